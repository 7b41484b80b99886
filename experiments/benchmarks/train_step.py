"""Times the train step of a `configs/clm.py` preset: tokens/s, MFU, input time per step.

  python experiments/benchmarks/train_step.py            # baby preset: 1x1, 2x1, 2x10
  python experiments/benchmarks/train_step.py --preset=default --settings=2x10

A setting is DEVICESxSTEPS_PER_CALL (CPU devices, `train.steps_per_call`), with a
trailing `f` for `train.flat_gradient_all_reduce` (2x10f); each runs in its own
process, as JAX fixes the device count at start-up. The first setting is
the baseline for the printed ratios. Model FLOPs per token
are counted as nanoGPT does, 6N + 12·L·H·Q·T (N parameters without the position
embedding, Q head dim, T context); MFU divides by the peak of a large float32
matmul measured in the same process on all devices at once.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NANOGPT_BABY_TOKENS_PER_SECOND = 19_000  # nanoGPT, PyTorch 2.13 CPU, this 2-core machine.


def measure_matmul_peak(devices, size: int = 2048, repeats: int = 10) -> float:
  """FLOP/s of one float32 [size, size] matmul per device, all devices at once."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from jax.sharding import Mesh, NamedSharding, PartitionSpec  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  mesh = Mesh(np.array(devices), ("d",))
  sharding = NamedSharding(mesh, PartitionSpec("d"))
  a = jax.device_put(jnp.ones((len(devices), size, size), jnp.float32) / size, sharding)
  matmul = jax.jit(lambda a: jnp.einsum("nij,njk->nik", a, a), out_shardings=sharding)
  matmul(a).block_until_ready()
  start = time.perf_counter()
  for _ in range(repeats):
    matmul(a).block_until_ready()
  seconds = (time.perf_counter() - start) / repeats
  return 2 * size**3 * len(devices) / seconds


def flops_per_token(model_cfg, num_params: int) -> float:
  non_embedding = num_params - model_cfg.max_length * model_cfg.model_dim
  return (6 * non_embedding + 12 * model_cfg.num_layers * model_cfg.num_heads
          * model_cfg.head_dim * model_cfg.max_length)


def run_one(preset: str, num_steps: int, steps_per_call: int, flat: bool = False) -> dict:
  """Runs in a child process whose CPU device count is already configured."""
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, ROOT)
  from configs import clm  # pylint: disable=import-outside-toplevel
  from transformer_jax.tasks import clm as clm_experiment  # pylint: disable=import-outside-toplevel
  from transformer_jax import configuration  # pylint: disable=import-outside-toplevel
  from transformer_jax.training import partitioning, steps  # pylint: disable=import-outside-toplevel

  config = clm.get_config(preset)
  config.train.flat_gradient_all_reduce = flat
  cfg = configuration.validate(config)
  # The task exactly as training builds it; its tokenizer and checkpoints go nowhere.
  with tempfile.TemporaryDirectory() as workdir:
    task = clm_experiment.build_task(cfg, workdir, need_data=True)
    trainer, data, model_cfg = task.trainer, task.data, task.cfg.model
    state = trainer.initial_state()
    num_params = sum(x.size for x in jax.tree_util.tree_leaves(state.params))
    train_step = steps.make_train_step(trainer.objective, trainer.optimizer, trainer.shardings,
                                       trainer.mesh, trainer.trainable, trainer.axis_rules,
                                       flat_all_reduce=flat)
    mesh, synchronous, t = trainer.mesh, trainer.synchronous, task.cfg.train
    key = jax.random.key(0)
  def timed(num_calls: int, first_step: int):
    nonlocal state
    input_seconds, start = 0.0, time.perf_counter()
    for call in range(num_calls):
      input_start = time.perf_counter()
      rows = [data.train_batch_at(first_step + call * k + i) for i in range(k)]
      batches = partitioning.put_batch({name: np.stack([r[name] for r in rows]) for name in rows[0]},
                                       mesh, stacked=True)
      input_seconds += time.perf_counter() - input_start
      state, metrics = train_step(state, batches, key)
      if synchronous:
        jax.block_until_ready(metrics)
    jax.block_until_ready(metrics)
    return (time.perf_counter() - start) / (num_calls * k), input_seconds / (num_calls * k)

  k = steps_per_call
  timed(2, 0)  # Compile and warm up.
  seconds_per_step, input_seconds = timed(max(num_steps // k, 1), 2 * k)
  tokens_per_step = t.batch_size * model_cfg.max_length
  peak = measure_matmul_peak(list(mesh.devices.flat))
  model_flops = flops_per_token(model_cfg, num_params) * tokens_per_step / seconds_per_step
  return {"devices": int(mesh.devices.size), "steps_per_call": f"{k}{'f' if flat else ''}",
          "parameters": int(num_params),
          "milliseconds_per_step": 1000 * seconds_per_step,
          "input_milliseconds_per_step": 1000 * input_seconds,
          "tokens_per_second": tokens_per_step / seconds_per_step,
          "matmul_peak_gflops": peak / 1e9, "mfu": model_flops / peak,
          "jax": jax.__version__}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--preset", default="baby")
  parser.add_argument("--settings", default="1x1,2x1,2x10",
                      help="comma-separated DEVICESxSTEPS_PER_CALL; the first is the baseline")
  parser.add_argument("--num_steps", type=int, default=100)
  parser.add_argument("--child", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child is not None:
    devices, steps_per_call = args.child.rstrip("f").split("x")
    import jax  # pylint: disable=import-outside-toplevel
    jax.config.update("jax_num_cpu_devices", int(devices))
    print(json.dumps(run_one(args.preset, args.num_steps, int(steps_per_call),
                             flat=args.child.endswith("f"))))
    return
  results = []
  for setting in args.settings.split(","):
    output = subprocess.run(
        [sys.executable, __file__, f"--preset={args.preset}", f"--num_steps={args.num_steps}",
         f"--child={setting}"], check=True, capture_output=True, text=True).stdout
    results.append(json.loads(output.strip().splitlines()[-1]))
  baseline = results[0]
  print(f"train step, configs/clm.py:{args.preset}, {baseline['parameters']:,} parameters, "
        f"jax {baseline['jax']}, {os.cpu_count()} CPUs")
  print(f"{'devices':>7} {'steps/call':>10} {'ms/step':>8} {'input ms':>8} {'tokens/s':>9} {'peak GF/s':>9} "
        f"{'MFU':>6} {'vs first':>8} {'vs nanoGPT':>10}")
  for r in results:
    nanogpt = (f"{r['tokens_per_second'] / NANOGPT_BABY_TOKENS_PER_SECOND:9.2f}x"
               if args.preset == "baby" else f"{'-':>10}")
    print(f"{r['devices']:>7} {r['steps_per_call']:>10} {r['milliseconds_per_step']:8.2f} "
          f"{r['input_milliseconds_per_step']:8.3f} {r['tokens_per_second']:9,.0f} "
          f"{r['matmul_peak_gflops']:9.1f} {r['mfu']:6.1%} "
          f"{r['tokens_per_second'] / baseline['tokens_per_second']:7.2f}x {nanogpt}")
  if args.preset == "baby":
    print(f"nanoGPT reference (quoted, not measured here): "
          f"{NANOGPT_BABY_TOKENS_PER_SECOND:,} tokens/s, ~40 ms/step, ~57% MFU")


if __name__ == "__main__":
  main()
