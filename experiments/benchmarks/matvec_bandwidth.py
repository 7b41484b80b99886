"""How fast this CPU streams weights through a matrix-vector product: the batch-1 decoding bound.

  python experiments/benchmarks/matvec_bandwidth.py

Why: a batch-1 decoding step (experiments/benchmarks/decoding.py) multiplies one row
by every weight matrix, so its speed is the rate at which matrix-vector products
read weights. This compares that rate, over the 12 blocks of GPT-2-small-shaped
weights (340 MiB float32, far larger than the caches), with the machine's streams:
a copy (jitted in-place x + 1; bytes read + written, the decoding benchmark's
floor) and a read-only sum, measured in the same run by the decoding benchmark's
own functions. Formulations:
  xla f32 [in, out]    x @ W, the layout of the repository's parameters
  xla f32 [out, in]    the same product with W stored transposed
  numpy f32 [in, out]  NumPy's BLAS, as a second opinion on the same product
  xla bf16 dot         bfloat16 weights converted in the product (half the bytes)
  xla bf16 reduce      bfloat16 weights [out, in], product written as multiply + sum
  xla int8 dot         int8 weights [in, out] converted in the dot, then the scales
                       (quantization/int8.py's xla_int8_dot, model.quantize=int8's fallback)
  xla int8 x int8      activations quantised per row too, int8 x int8 -> int32 dot_general
  xla int8 reduce i32  int8 weights [out, in], int32 multiply + sum (the best XLA form here)
  kernel int8          the jax.ffi C++ kernel (quantization/int8_kernel.py), int8 [in, out]
Each is a chain of the blocks' four products (QKV, output, MLP in, MLP out),
timed as the median of --repeats calls after a warm-up.
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import jax  # pylint: disable=wrong-import-position
import jax.numpy as jnp  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from experiments.benchmarks.decoding import (  # pylint: disable=wrong-import-position
    cpu_name, measure_copy_bandwidth, measure_read_bandwidth, median_seconds)
from transformer_jax.quantization import int8, int8_kernel  # pylint: disable=wrong-import-position

WIDTH = 768
LAYERS = 12
SHAPES = ((WIDTH, 3 * WIDTH), (WIDTH, WIDTH), (WIDTH, 4 * WIDTH), (4 * WIDTH, WIDTH))


def chain(x, layers, product, gelu=jax.nn.gelu):
  """x [1, D] through every block's four products; slicing keeps the QKV output at D."""
  for qkv, output, mlp_in, mlp_out in layers:
    h = product(product(x, qkv)[:, :WIDTH], output)
    x = x + product(gelu(product(h, mlp_in)), mlp_out)
  return x


def numpy_gelu(h):
  return 0.5 * h * (1 + np.tanh(0.7978845608 * (h + 0.044715 * h**3)))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=9)
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  weights = [[rng.standard_normal(s, dtype=np.float32) * 0.02 for s in SHAPES]
             for _ in range(LAYERS)]
  f32_bytes = sum(w.nbytes for layer in weights for w in layer)
  x = np.full((1, WIDTH), 0.1, np.float32)

  copy = measure_copy_bandwidth(repeats=args.repeats)
  read = measure_read_bandwidth(repeats=args.repeats)

  transposed = lambda w: jnp.asarray(w.T.copy())
  contract_last = lambda v, w: jax.lax.dot_general(v, w, (((1,), (1,)), ((), ())))
  variants = [
      ("xla f32 [in, out]", [[jnp.asarray(w) for w in l] for l in weights],
       lambda v, w: v @ w, f32_bytes),
      ("xla f32 [out, in]", [[transposed(w) for w in l] for l in weights],
       contract_last, f32_bytes),
      ("xla bf16 dot", [[jnp.asarray(w, jnp.bfloat16) for w in l] for l in weights],
       lambda v, w: v @ w.astype(jnp.float32), f32_bytes // 2),
      ("xla bf16 reduce", [[transposed(w).astype(jnp.bfloat16) for w in l] for l in weights],
       lambda v, w: jnp.sum(w[None].astype(jnp.float32) * v[:, None, :], axis=2),
       f32_bytes // 2),
  ]
  quantized = [[int8.quantize_array(w, 1) for w in l] for l in weights]  # [in, out], scale [out]
  rows_first = [[(q.T.copy(), s) for q, s in l] for l in quantized]  # [out, in]

  def int8_by_int8(v, w):
    v_scale = jnp.max(jnp.abs(v), axis=1, keepdims=True) / 127
    v8 = jnp.round(v / v_scale).astype(jnp.int8)
    total = jax.lax.dot_general(v8, w[0], (((1,), (0,)), ((), ())),
                                preferred_element_type=jnp.int32)
    return total.astype(jnp.float32) * v_scale * w[1]

  def int32_reduce(v, w):
    v_scale = jnp.max(jnp.abs(v), axis=1, keepdims=True) / 127
    v32 = jnp.round(v / v_scale).astype(jnp.int32)
    total = jnp.sum(w[0][None].astype(jnp.int32) * v32[:, None, :], axis=2)
    return total.astype(jnp.float32) * v_scale * w[1]

  int8_bytes = f32_bytes // 4
  variants += [
      ("xla int8 dot", quantized,
       lambda v, w: int8.xla_int8_dot(v, w[0], w[1], jnp.float32), int8_bytes),
      ("xla int8 x int8", quantized, int8_by_int8, int8_bytes),
      ("xla int8 reduce i32", rows_first, int32_reduce, int8_bytes),
  ]
  if int8_kernel.available(jnp.float32):
    variants.append(("kernel int8", quantized,
                     lambda v, w: int8_kernel.matmul(v, w[0], w[1]), int8_bytes))
  print(f"CPU: {cpu_name()}")
  print(f"{jax.devices()[0].device_kind}, jax {jax.__version__}; block weights of GPT-2 small: "
        f"{f32_bytes / 2**20:.0f} MiB float32")
  print(f"copy (read + written) {copy / 1e9:.1f} GB/s; read-only sum {read / 1e9:.1f} GB/s")
  print(f"{'product':22s} {'ms':>7s} {'GB/s read':>10s} {'of copy':>8s} {'of sum':>7s}")

  def report(name, seconds, nbytes):
    rate = nbytes / seconds
    print(f"{name:22s} {1000 * seconds:7.2f} {rate / 1e9:10.1f} {rate / copy:7.0%} "
          f"{rate / read:6.0%}")

  xd = jnp.asarray(x)
  for name, layers, product, nbytes in variants:
    run = jax.jit(lambda ls, v, product=product: chain(v, ls, product))
    call = lambda run=run, layers=layers: run(layers, xd).block_until_ready()
    call()  # Compile.
    report(name, median_seconds(call, args.repeats), nbytes)
  numpy_chain = lambda: chain(x, weights, np.matmul, numpy_gelu)
  numpy_chain()
  report("numpy f32 [in, out]", median_seconds(numpy_chain, args.repeats), f32_bytes)


if __name__ == "__main__":
  main()
