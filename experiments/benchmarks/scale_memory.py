"""Memory and compile time of the scale-out levers, from the compiled train step.

  python experiments/benchmarks/scale_memory.py

Three tables, each from XLA's own accounting of the compiled (never run) step of a
GPT on `configs/clm.py` data, on emulated CPU devices:
  1. per-device bytes of parameters + optimizer state (the step's arguments minus its
     batch) for DP, FSDP, TP and FSDP x TP on 4 and 8 devices, against DP's;
  2. peak temporary memory of one device against train.microbatches 1/2/4/8 and against
     model.remat none/full/save_dots, with the bytes the forward pass saves for the
     backward pass (`jax.ad_checkpoint.saved_residuals`: what remat exists to cut; XLA's
     CPU scheduler does not turn that into a lower peak, GPU and TPU schedulers do);
  3. compile time against depth, unrolled and with model.scan_layers.
Each device count runs in its own process (JAX fixes it at start-up). Goal: FSDP on 4
devices holds at most 30% of DP's parameter and optimizer bytes per device.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A GPT big enough that parameters dominate the arguments: 8 x 512, context 256.
MODEL = {"model.num_layers": 8, "model.num_heads": 8, "model.model_dim": 512,
         "model.mlp_dim": 2048, "model.max_length": 256, "train.batch_size": 16,
         "eval.batch_size": 16}


def _compiled(overrides: dict):
  """The compiled train step (one step per call) of configs/clm.py with `overrides`,
  and the state's abstract shapes."""
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, ROOT)
  from configs import clm  # pylint: disable=import-outside-toplevel
  from transformer_jax.tasks import clm as clm_experiment  # pylint: disable=import-outside-toplevel
  from transformer_jax import configuration  # pylint: disable=import-outside-toplevel
  from transformer_jax.training import partitioning, steps  # pylint: disable=import-outside-toplevel

  config = clm.get_config("default")
  config.mesh.num_cpu_devices = 0
  for path, value in {**MODEL, **overrides}.items():
    section, field = path.split(".")
    setattr(config[section], field, value)
  cfg = configuration.validate(config)
  with tempfile.TemporaryDirectory() as workdir:
    task = clm_experiment.build_task(cfg, workdir, need_data=True)
  trainer = task.trainer
  step = steps.make_train_step(trainer.objective, trainer.optimizer, trainer.shardings,
                               trainer.mesh, trainer.trainable, trainer.axis_rules,
                               cfg.train.microbatches)
  rows = task.data.train_batch_at(0)
  batch = {k: jax.ShapeDtypeStruct((1,) + v.shape, v.dtype,
                                   sharding=partitioning.stacked_batch_sharding(trainer.mesh))
           for k, v in rows.items()}
  key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype,
                             sharding=partitioning.replicated(trainer.mesh))
  start = time.perf_counter()
  compiled = step.lower(trainer.abstract_state, batch, key).compile()
  seconds = time.perf_counter() - start
  batch_bytes = sum(int(np.prod(v.shape)) * v.dtype.itemsize for v in batch.values())
  return compiled, seconds, batch_bytes // trainer.mesh.devices.size, (task, rows)


def _residual_bytes(task, rows, microbatches: int) -> int:
  """Bytes the forward pass of one micro-batch keeps for the backward pass."""
  import jax  # pylint: disable=import-outside-toplevel
  # jax.ad_checkpoint.print_saved_residuals prints this list; the function itself is private.
  from jax._src import ad_checkpoint  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from transformer_jax.objectives import objective as objective_lib  # pylint: disable=import-outside-toplevel
  micro = {k: v[:len(v) // microbatches] for k, v in rows.items()}
  params = task.trainer.initial_state().params
  loss = lambda p: objective_lib.train_loss(task.trainer.objective, p, micro,
                                            jax.random.key(0))[0]
  return sum(int(np.prod(aval.shape)) * aval.dtype.itemsize
             for aval, source in ad_checkpoint.saved_residuals(loss, params)
             if "from the argument" not in source)


def worker(kind: str) -> list[dict]:
  """Runs in a child process whose CPU device count is already set."""
  import jax  # pylint: disable=import-outside-toplevel
  results = []
  if kind == "layouts":
    n = jax.device_count()
    layouts = {"DP": (n, 1, 1), "FSDP": (1, n, 1), "TP": (1, 1, n),
               "FSDP x TP": (1, n // 2, 2)}
    for name, (data, fsdp, tensor) in layouts.items():
      compiled, _, batch_bytes, _ = _compiled({"mesh.data_axis_size": data,
                                            "mesh.fsdp_axis_size": fsdp,
                                            "mesh.tensor_axis_size": tensor})
      memory = compiled.memory_analysis()
      results.append({"layout": name, "devices": n,
                      "state_bytes": memory.argument_size_in_bytes - batch_bytes,
                      "temp_bytes": memory.temp_size_in_bytes})
  elif kind == "levers":
    for microbatches in (1, 2, 4, 8):
      compiled, _, _, (task, rows) = _compiled({"train.microbatches": microbatches})
      results.append({"lever": f"train.microbatches={microbatches}",
                      "temp_bytes": compiled.memory_analysis().temp_size_in_bytes,
                      "residual_bytes": _residual_bytes(task, rows, microbatches)})
    for remat in ("none", "full", "save_dots"):
      compiled, _, _, (task, rows) = _compiled({"model.remat": remat})
      results.append({"lever": f"model.remat={remat}",
                      "temp_bytes": compiled.memory_analysis().temp_size_in_bytes,
                      "residual_bytes": _residual_bytes(task, rows, 1)})
  else:
    for layers in (2, 4, 8, 16):
      for scan in (False, True):
        _, seconds, _, _ = _compiled({"model.num_layers": layers, "model.scan_layers": scan})
        results.append({"layers": layers, "scan_layers": scan, "compile_seconds": seconds})
  return results


def _child(kind: str, devices: int) -> list[dict]:
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
             JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, __file__, "--worker", kind], env=env, check=True,
                       capture_output=True, text=True, timeout=3600).stdout
  return json.loads(out.strip().splitlines()[-1])


def _megabytes(n: int) -> str:
  return f"{n / 2**20:,.1f} MiB"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--worker", choices=("layouts", "levers", "compile"))
  args = parser.parse_args()
  if args.worker:
    print(json.dumps(worker(args.worker)))
    return
  import jax  # pylint: disable=import-outside-toplevel
  print(f"scale-out memory, {MODEL}, jax {jax.__version__}")
  print("\n1. parameters + optimizer state per device (compiled step's arguments - batch)")
  print(f"{'devices':>7} {'layout':>10} {'state':>12} {'vs DP':>7} {'temporaries':>12}")
  for devices in (4, 8):
    rows = _child("layouts", devices)
    dp = rows[0]["state_bytes"]
    for row in rows:
      print(f"{devices:>7} {row['layout']:>10} {_megabytes(row['state_bytes']):>12} "
            f"{row['state_bytes'] / dp:>6.1%} {_megabytes(row['temp_bytes']):>12}")
  print("\n2. memory of one device: XLA's peak temporaries, and the forward pass's residuals")
  print(f"{'lever':>28} {'temporaries':>12} {'ratio':>6} {'residuals':>12} {'ratio':>6}")
  rows = _child("levers", 1)
  for row in rows:
    base = rows[0] if "microbatches" in row["lever"] else rows[4]
    print(f"{row['lever']:>28} {_megabytes(row['temp_bytes']):>12} "
          f"{row['temp_bytes'] / base['temp_bytes']:>5.2f}x "
          f"{_megabytes(row['residual_bytes']):>12} "
          f"{row['residual_bytes'] / base['residual_bytes']:>5.2f}x")
  print("\n3. compile time of the train step, 1 device")
  print(f"{'layers':>6} {'unrolled':>10} {'scanned':>10}")
  rows = _child("compile", 1)
  for layers in (2, 4, 8, 16):
    plain, scanned = (next(r["compile_seconds"] for r in rows
                           if r["layers"] == layers and r["scan_layers"] == scan)
                      for scan in (False, True))
    print(f"{layers:>6} {plain:>9.1f}s {scanned:>9.1f}s")


if __name__ == "__main__":
  main()
