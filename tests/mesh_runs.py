"""Trains the tiny presets in-process on several meshes and prints what the tests compare.

Usage: XLA_FLAGS=--xla_force_host_platform_device_count=N python tests/mesh_runs.py WORKDIR RUN...
where RUN is family:data,fsdp,tensor[:steps[:name]] (e.g. clm:1,2,2 or clm:1,4,1:2:a), with
a trailing + to decode too (clm:1,2,2+).
Each run trains in WORKDIR/<name> (default <family>-<d>x<f>x<t>; a run in the directory of
an earlier one resumes its checkpoint, whatever the mesh) and
prints one JSON line: the run, its train losses by step, the final evaluation, and each
parameter's PartitionSpec and per-device share of elements; for the decoders' runs marked +
also the KV-cached prefill's logits and a few greedy tokens, decoded on that mesh. One process
serves many
runs, so the tests pay for one interpreter and one backend start.
"""

import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

STEPS = 4


def run(workdir: str, spec: str) -> dict:
  import jax  # pylint: disable=import-outside-toplevel
  from conftest import tiny_config  # pylint: disable=import-outside-toplevel
  from transformer_jax import tasks  # pylint: disable=import-outside-toplevel
  from transformer_jax.run import train as train_lib  # pylint: disable=import-outside-toplevel
  from transformer_jax import parameter_paths  # pylint: disable=import-outside-toplevel
  from transformer_jax.training.metrics_writer import read_metrics  # pylint: disable=import-outside-toplevel

  with_decoding = spec.endswith("+")
  family, sizes, *rest = spec.removesuffix("+").split(":")
  steps = int(rest[0]) if rest else STEPS
  data, fsdp, tensor = (int(n) for n in sizes.split(","))
  module = {"clm": "clm", "mlm": "mlm", "seq2seq": "seq2seq"}[family]
  cfg = tiny_config(module, **{
      "mesh.data_axis_size": data, "mesh.fsdp_axis_size": fsdp,
      "mesh.tensor_axis_size": tensor, "train.num_steps": steps, "train.decay_steps": STEPS,
      "train.log_every_steps": 1, "train.eval_every_steps": STEPS,
      "train.checkpoint_every_steps": 2, "decode.max_new_tokens": 0, "eval.bleu_pairs": 0})
  name = rest[1] if len(rest) > 1 else f"{family}-{data}x{fsdp}x{tensor}"
  directory = os.path.join(workdir, name)
  experiment = tasks.get(cfg.experiment)
  task = experiment.build_task(cfg, directory, **({"need_data": True}
                                                  if family != "mlm" else {}))
  result = train_lib.train(task, tokens_per_step=1)
  params = parameter_paths.flat(result.state.params)
  decoded = decode(task, result.state.params) if with_decoding else {}
  return {
      **decoded,
      "run": spec.removesuffix("+"),
      "train_loss": {r["step"]: r["train_loss"] for r in read_metrics(directory)
                     if "train_loss" in r},
      "eval_loss": result.last_eval["eval_loss"],
      "specs": {p: [a if a is None or isinstance(a, str) else list(a)
                    for a in v.sharding.spec] for p, v in params.items()},
      "shares": {p: v.addressable_shards[0].data.size / v.size for p, v in params.items()},
      "devices": jax.device_count(),
  }


def decode(task, params) -> dict:
  """The decoding path on the task's mesh: prefill logits [B, V] and greedy continuations."""
  import functools  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from transformer_jax.decoding import model_steps, samplers  # pylint: disable=import-outside-toplevel
  tokens = jnp.asarray([[5, 6, 7, 8], [9, 10, 11, 12]], jnp.int32)
  with task.decoding_mesh():
    if task.cfg.experiment == "clm":
      logits, _ = jax.jit(functools.partial(model_steps.decoder_prefill, task.model,
                                            cache_length=8))(params, tokens,
                                                             jnp.asarray([4, 3], jnp.int32))
      new, _ = jax.jit(functools.partial(model_steps.generate, task.model,
                                         sampler=samplers.greedy, max_new_tokens=4))(
          params, tokens, jnp.asarray([4, 3], jnp.int32), key=jax.random.key(0))
    else:
      source_ids = (tokens > 5).astype(jnp.int32)
      logits = jax.jit(functools.partial(model_steps.seq2seq_prefill, task.model, bos_token=1,
                                         max_new_tokens=4))(params, tokens, source_ids)[0]
      new, _ = jax.jit(functools.partial(model_steps.translate, task.model, bos_token=1,
                                         sampler=samplers.greedy, max_new_tokens=4))(
          params, tokens, source_ids, key=jax.random.key(0))
  return {"prefill_logits": np.asarray(logits).tolist(), "greedy": np.asarray(new).tolist()}


def main() -> None:
  workdir, specs = sys.argv[1], sys.argv[2:]
  for spec in specs:
    print(json.dumps(run(workdir, spec)), flush=True)


if __name__ == "__main__":
  main()
