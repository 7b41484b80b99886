"""int8 weight-only inference (`model.quantize=int8`): every weight matmul with int8 weights.

Each weight matrix that goes through the one matmul path (`dot` of `Projection` and of
the token `Embedding`, whose `attend` is the tied output projection; see
models/projection.py) is stored as int8 with one float32 scale per output channel,
symmetric: scale = max |w| over the inputs / 127, q = round(w / scale) in [-127, 127], so
q · scale is within half a step (scale / 2) of w. Activations, biases, norms, position
tables and the KV cache stay in the computation dtype.

The quantized parameter tree keeps every path and shape: `.../kernel` becomes int8 and
gains a sibling `.../kernel_scale` [*out]; `token_embedding/embedding` [V, D] becomes
int8 with `token_embedding/embedding_scale` [V] (a row's scale serves the lookup and
the tied projection alike). Which axes of a kernel are its outputs is read from the
model itself: one abstract call records each `dot`'s [in, out] view.

`Int8Model(model, examples)` stands for `model` everywhere a model is applied (the
objectives, decoding, the translator): `apply` runs it under a Flax method interceptor
that performs each `dot` with an int8 kernel as `int8_dot` and dequantises embedding
rows on lookup; float kernels pass through untouched.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from transformer_jax.models.embedding import Embedding
from transformer_jax.quantization import int8_kernel
from transformer_jax import parameter_paths

SCALE_SUFFIX = "_scale"
LEVELS = 127  # Symmetric: -127 .. 127 (-128 unused, so negation is exact).


def quantize_array(weights: jax.Array, num_output_axes: int) -> tuple[jax.Array, jax.Array]:
  """w [*in, *out] -> (q int8 [*in, *out], scale float32 [*out]), q · scale ≈ w.

  num_output_axes: how many trailing axes are output channels; a negative number
  -n means the first n axes are (the embedding table [V, D], whose rows are the tied
  projection's outputs).
  """
  weights = jnp.asarray(weights, jnp.float32)
  if num_output_axes > 0:
    reduced = tuple(range(weights.ndim - num_output_axes))
  else:
    reduced = tuple(range(-num_output_axes, weights.ndim))
  largest = jnp.max(jnp.abs(weights), axis=reduced, keepdims=True)
  scale = jnp.where(largest > 0, largest / LEVELS, 1.0)
  values = jnp.clip(jnp.round(weights / scale), -LEVELS, LEVELS).astype(jnp.int8)
  return values, jnp.squeeze(scale, axis=reduced)


def dequantize_array(values: jax.Array, scale: jax.Array, num_output_axes: int) -> jax.Array:
  """The float32 weights q · scale (the inverse of `quantize_array` up to rounding)."""
  if num_output_axes > 0:
    return values.astype(jnp.float32) * scale
  return values.astype(jnp.float32) * scale.reshape(scale.shape + (1,) * (values.ndim -
                                                                          scale.ndim))


def xla_int8_dot(x: jax.Array, values: jax.Array, scale: jax.Array, dtype: Any,
                 rows: bool = False) -> jax.Array:
  """XLA's formulation of `int8_dot`: the int8 weights converted to dtype in the dot, the
  per-output-channel scale applied after it."""
  weights = values.astype(dtype)
  product = jnp.dot(x.astype(dtype), weights.T if rows else weights)
  return product * scale.astype(dtype)


def int8_dot(x: jax.Array, values: jax.Array, scale: jax.Array, dtype: Any,
             rows: bool = False) -> jax.Array:
  """x [..., in] · (values int8 [in, out] · scale [out]) -> [..., out] in dtype; rows:
  values are [out, in] (the tied embedding table [V, D]).

  On one CPU device in float32, the C++ kernel (`int8_kernel`) that reads each weight
  as one byte; else XLA's formulation (`xla_int8_dot`), which converts the weights to
  float32 first (see experiments/README.md for both speeds).
  """
  if int8_kernel.available(dtype):
    flat = x.reshape(-1, x.shape[-1])
    out = values.shape[0] if rows else values.shape[1]
    return int8_kernel.matmul(flat, values, scale, rows).reshape(x.shape[:-1] + (out,))
  return xla_int8_dot(x, values, scale, dtype, rows)


def _scale_of(module: nn.Module):
  """The scale variable next to a module's int8 weight, or None."""
  name = "embedding" if isinstance(module, Embedding) else "kernel"
  if module.has_variable("params", name + SCALE_SUFFIX):
    return module.get_variable("params", name + SCALE_SUFFIX)
  return None


def _interceptor(next_fun, args, kwargs, context):
  module = context.module
  if context.method_name == "dot" and args[1].dtype == jnp.int8:
    x, kernel = args
    scale = _scale_of(module)
    if isinstance(module, Embedding):  # kernel is the table transposed: use the table.
      return int8_dot(x, module.embedding, scale, module.dtype, rows=True)
    return int8_dot(x, kernel, scale.reshape(kernel.shape[-1]), module.dtype)
  if (context.method_name == "__call__" and isinstance(module, Embedding)
      and module.embedding.dtype == jnp.int8):
    ids = args[0]
    rows = jnp.take(module.embedding, ids, axis=0).astype(module.dtype)
    return rows * jnp.take(_scale_of(module), ids, axis=0)[..., None].astype(module.dtype)
  return next_fun(*args, **kwargs)


def output_axes(model: nn.Module, abstract_params, examples: Sequence[jax.Array],
                **apply_kwargs) -> dict[str, int]:
  """{parameter path: output axes} of every weight that goes through `dot`, read from one
  abstract call of the model: n > 0 trailing axes ([*in, *out] kernels), -1 for a table
  used transposed (the tied [V, D] embedding)."""
  found: dict[str, int] = {}

  def record(next_fun, args, kwargs, context):
    if context.method_name == "dot":
      module = context.module
      prefix = "/".join(module.path)
      fan_out = args[1].shape[-1]
      if isinstance(module, Embedding):
        found[f"{prefix}/embedding"] = -1
      else:
        shape = module.get_variable("params", "kernel").shape
        count = next(n for n in range(1, len(shape))
                     if math.prod(shape[len(shape) - n:]) == fan_out)
        found[f"{prefix}/kernel"] = count
    return next_fun(*args, **kwargs)

  def call(params):
    with nn.intercept_methods(record):
      return model.apply({"params": params}, *examples, deterministic=True, **apply_kwargs)

  jax.eval_shape(call, abstract_params)
  return found


def quantize(params, axes: dict[str, int]):
  """A float parameter tree -> the int8 tree (see the module docstring); the other leaves
  are returned as they are."""
  leaves = dict(parameter_paths.flat(params))
  for path, count in axes.items():
    values, scale = quantize_array(leaves[path], count)
    leaves[path] = values
    leaves[path + SCALE_SUFFIX] = scale
  return parameter_paths.nested(leaves)


def dequantize(params, axes: dict[str, int]):
  """The int8 tree -> float32 weights q · scale at the same paths (scales dropped)."""
  leaves = dict(parameter_paths.flat(params))
  for path, count in axes.items():
    leaves[path] = dequantize_array(leaves[path], leaves.pop(path + SCALE_SUFFIX), count)
  return parameter_paths.nested(leaves)


def tree_bytes(params) -> int:
  return sum(int(np.prod(leaf.shape)) * jnp.dtype(leaf.dtype).itemsize
             for leaf in jax.tree_util.tree_leaves(params))


class Int8Model:
  """`model` with its weight matmuls in int8 (see the module docstring).

  examples: one int32 [1, length] array per positional input, for the abstract call
  that finds each weight's output axes. `quantize(params)` makes the int8 tree that
  `apply` expects; `init` and every attribute are the wrapped model's.
  """

  def __init__(self, model: nn.Module, examples: Sequence[jax.Array]):
    self.model = model
    self._examples = tuple(examples)
    self._axes = None

  def __getattr__(self, name):
    return getattr(self.model, name)

  def apply(self, *args, **kwargs):
    with nn.intercept_methods(_interceptor):
      return self.model.apply(*args, **kwargs)

  def init(self, *args, **kwargs):
    return self.model.init(*args, **kwargs)

  def output_axes(self, abstract_params) -> dict[str, int]:
    if self._axes is None:
      self._axes = output_axes(self.model, abstract_params, self._examples)
    return self._axes

  def quantize(self, params):
    """The int8 tree of float `params`, computed where they are (one jit)."""
    axes = self.output_axes(jax.eval_shape(lambda: params))
    return jax.jit(lambda p: quantize(p, axes))(params)
