"""Trains the tiny presets in-process on several meshes and prints what the tests compare.

Usage: XLA_FLAGS=--xla_force_host_platform_device_count=N python tests/mesh_runs.py WORKDIR RUN...
where RUN is family:data,fsdp,tensor[:steps[:name]] (e.g. clm:1,2,2 or clm:1,4,1:2:a).
Each run trains in WORKDIR/<name> (default <family>-<d>x<f>x<t>; a run in the directory of
an earlier one resumes its checkpoint, whatever the mesh) and
prints one JSON line: the run, its train losses by step, the final evaluation, and each
parameter's PartitionSpec and per-device share of elements. One process serves many
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
  from transformer_jax import configuration  # pylint: disable=import-outside-toplevel
  from experiments import task as task_lib  # pylint: disable=import-outside-toplevel
  from transformer_jax.training import parameter_paths  # pylint: disable=import-outside-toplevel
  from transformer_jax.training.metrics_writer import read_metrics  # pylint: disable=import-outside-toplevel

  family, sizes, *rest = spec.split(":")
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
  experiment = configuration.experiment_module(cfg.experiment)
  task = experiment.build_task(cfg, directory, **({"need_data": True}
                                                  if family != "mlm" else {}))
  result = task_lib.train(task, directory, tokens_per_step=1)
  params = parameter_paths.flat(result.state.params)
  return {
      "run": spec,
      "train_loss": {r["step"]: r["train_loss"] for r in read_metrics(directory)
                     if "train_loss" in r},
      "eval_loss": result.last_eval["eval_loss"],
      "specs": {p: [a if a is None or isinstance(a, str) else list(a)
                    for a in v.sharding.spec] for p, v in params.items()},
      "shares": {p: v.addressable_shards[0].data.size / v.size for p, v in params.items()},
      "devices": jax.device_count(),
  }


def main() -> None:
  workdir, specs = sys.argv[1], sys.argv[2:]
  for spec in specs:
    print(json.dumps(run(workdir, spec)), flush=True)


if __name__ == "__main__":
  main()
