"""Training throughput and MFU of a GPT-2-small-shaped model on whatever device is there.

  python experiments/benchmarks/gpu_throughput.py                 # GPT-2 small, bf16
  python experiments/benchmarks/gpu_throughput.py --shape=tiny    # seconds on a CPU

GPT-2 small's shape (12 layers, 12 heads, 768 wide, context 1024, vocabulary 50,304:
50,257 padded to a multiple of 64) trains on random tokens, data parallel over every
device, in bfloat16 with float32 parameters, with fused attention: cuDNN's kernel
(`jax.nn.dot_product_attention(implementation="cudnn")`) on a GPU, XLA's elsewhere.
Model FLOPs per token are nanoGPT's 6N + 12·L·H·Q·T; MFU divides them by the device's
peak: the datasheet's dense bfloat16 figure for known GPUs, else a float32 matmul
measured in the same process (CPU). Goal on an H100/H200: at least 45% MFU.
"""

import argparse
import dataclasses
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

# Dense bfloat16 peak FLOP/s per device, from the vendors' datasheets.
PEAK_BFLOAT16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12}
SHAPES = {
    "gpt2": dict(num_layers=12, num_heads=12, model_dim=768, max_length=1024, vocab=50304,
                 batch_per_device=16),
    "tiny": dict(num_layers=2, num_heads=2, model_dim=64, max_length=64, vocab=256,
                 batch_per_device=2),
}


def peak_flops(device) -> tuple[float, str]:
  """(FLOP/s of one device, where the figure comes from)."""
  for name, peak in PEAK_BFLOAT16.items():
    if name in device.device_kind:
      return peak, f"{name} datasheet, dense bfloat16"
  from experiments.benchmarks.train_step import measure_matmul_peak  # pylint: disable=import-outside-toplevel
  return measure_matmul_peak([device]), "measured float32 matmul"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--shape", choices=sorted(SHAPES), default="gpt2")
  parser.add_argument("--num_steps", type=int, default=20)
  parser.add_argument("--microbatches", type=int, default=1)
  parser.add_argument("--remat", default="none")
  args = parser.parse_args()

  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from configs import clm  # pylint: disable=import-outside-toplevel
  from experiments.benchmarks.train_step import flops_per_token  # pylint: disable=import-outside-toplevel
  from transformer_jax import configuration  # pylint: disable=import-outside-toplevel
  from transformer_jax.models.decoder import Decoder  # pylint: disable=import-outside-toplevel
  from transformer_jax.objectives.causal_lm import CausalLmObjective  # pylint: disable=import-outside-toplevel
  from transformer_jax.training import partitioning, steps  # pylint: disable=import-outside-toplevel
  from transformer_jax.training.loop import Trainer  # pylint: disable=import-outside-toplevel

  shape = SHAPES[args.shape]
  gpu = jax.default_backend() == "gpu"
  devices = jax.device_count()
  config = clm.get_config("gpt2")
  for field in ("num_layers", "num_heads", "model_dim", "max_length"):
    setattr(config.model, field, shape[field])
  config.model.mlp_dim = 4 * shape["model_dim"]
  config.model.dropout_rate = 0.0  # Fused attention applies none.
  config.model.dtype = "bfloat16"
  config.model.attention_impl = "cudnn" if gpu else "fused"
  config.model.remat = args.remat
  config.train.batch_size = shape["batch_per_device"] * devices
  config.train.microbatches = args.microbatches
  cfg = configuration.validate(config)
  model_cfg = dataclasses.replace(cfg.model, vocab_size=shape["vocab"])
  model = Decoder(config=model_cfg)
  example = np.zeros((1, model_cfg.max_length), np.int32)
  mesh = partitioning.make_mesh(cfg.mesh, cfg.train.batch_size)
  with tempfile.TemporaryDirectory() as workdir:
    trainer = Trainer(objective=CausalLmObjective(model),
                      init_params=lambda key: model.init(key, example, deterministic=True)[
                          "params"], config=cfg.train, mesh=mesh, workdir=workdir,
                      checkpoint_metadata={})
  state = trainer.initial_state()
  step = steps.make_train_step(trainer.objective, trainer.optimizer, trainer.shardings, mesh,
                               trainer.trainable, trainer.axis_rules, cfg.train.microbatches)
  rng = np.random.default_rng(0)
  tokens = rng.integers(0, shape["vocab"], (1, cfg.train.batch_size, model_cfg.max_length + 1))
  batch = partitioning.put_batch({"inputs": tokens[..., :-1].astype(np.int32),
                                  "targets": tokens[..., 1:].astype(np.int32)}, mesh,
                                 stacked=True)
  key = jax.jit(lambda: jax.random.key(0), out_shardings=partitioning.replicated(mesh))()
  start = time.perf_counter()
  state, metrics = step(state, batch, key)
  jax.block_until_ready(metrics)
  compile_seconds = time.perf_counter() - start
  start = time.perf_counter()
  for _ in range(args.num_steps):
    state, metrics = step(state, batch, key)
  jax.block_until_ready(metrics)
  seconds = (time.perf_counter() - start) / args.num_steps
  num_params = sum(x.size for x in jax.tree_util.tree_leaves(state.params))
  tokens_per_second = cfg.train.batch_size * model_cfg.max_length / seconds
  peak, source = peak_flops(jax.devices()[0])
  mfu = flops_per_token(model_cfg, num_params) * tokens_per_second / (peak * devices)
  print(f"{args.shape}: {num_params:,} parameters, {devices} x {jax.devices()[0].device_kind}, "
        f"jax {jax.__version__}, attention {model_cfg.attention_impl}, bfloat16")
  print(f"batch {cfg.train.batch_size} x {model_cfg.max_length}, microbatches "
        f"{args.microbatches}, remat {args.remat}: compile {compile_seconds:.1f} s, "
        f"{1000 * seconds:.1f} ms/step, {tokens_per_second:,.0f} tokens/s, MFU {mfu:.1%} "
        f"(peak {peak / 1e9:,.0f} GFLOP/s per device: {source}); loss "
        f"{float(metrics['train_loss'][-1]):.3f}")


if __name__ == "__main__":
  main()
