"""LoRA (Hu et al. 2021): a frozen weight W plus a trained low-rank update (alpha / r)·A·B.

Every weight matmul of the models goes through one method, `dot(x, kernel)` with x
[N, in] (the tied output projection: [..., in]) and the kernel as a 2-D [in, out]
matrix (see models/projection.py). An interceptor on that method adds
(alpha / r) · dropout(x) · A · B to the product of each targeted kernel's module (not the tied table), with
A [in, r] drawn like a Kaiming-uniform layer and B [r, out] zero: at initialisation
the model is exactly the base. The adapters live in their own parameter tree,
`lora/<module path>/{a, b}`, apart from the base's weights; `merge` folds them into
the kernels for inference or export.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.models.projection import Projection
from transformer_jax import parameter_paths

NAME = "lora"

Shapes = tuple[tuple[str, int, int], ...]  # (module path, in, out) of each target.


def target_shapes(model: nn.Module, example_args: tuple, example_kwargs: dict,
                  parameter_patterns: tuple[str, ...]) -> Shapes:
  """The targeted modules' paths and their dot's [in, out], found by tracing `model` once
  (shapes only). A target is a module whose kernel's path matches a pattern. The tied
  token table is not one: an update to it would change the input embeddings too, so a
  merged model could not equal the adapted one.
  """
  found: dict[str, tuple[int, int]] = {}

  def record(next_fun, args, kwargs, context):
    if context.method_name == "dot" and isinstance(context.module, Projection):
      path = "/".join(context.module.path)
      kernel = args[1]
      if parameter_paths.matching([f"{path}/kernel"], parameter_patterns):
        found[path] = (int(kernel.shape[0]), int(kernel.shape[1]))
    return next_fun(*args, **kwargs)

  def trace(key):
    with nn.intercept_methods(record):
      return model.init(key, *example_args, **example_kwargs)

  jax.eval_shape(trace, jax.random.key(0))
  return tuple((path, fan_in, fan_out) for path, (fan_in, fan_out) in sorted(found.items()))


def init(key: jax.Array, shapes: Shapes, rank: int) -> dict:
  """{module path ...: {a: [in, r], b: [r, out]}}, nested; A ~ U(±1/√in), B = 0."""
  leaves = {}
  for index, (path, fan_in, fan_out) in enumerate(shapes):
    bound = 1.0 / math.sqrt(fan_in)
    leaves[f"{path}/a"] = jax.random.uniform(jax.random.fold_in(key, index), (fan_in, rank),
                                             jnp.float32, -bound, bound)
    leaves[f"{path}/b"] = jnp.zeros((rank, fan_out), jnp.float32)
  return parameter_paths.nested(leaves)


def interceptor(adapters: dict, scale: float,
                dropout: Optional[Callable[[jax.Array], jax.Array]] = None):
  """A `nn.intercept_methods` interceptor adding each targeted module's low-rank update."""
  flat = parameter_paths.flat(adapters)

  def intercept(next_fun, args, kwargs, context):
    y = next_fun(*args, **kwargs)
    if context.method_name != "dot":
      return y
    path = "/".join(context.module.path)
    if f"{path}/a" not in flat:
      return y
    x = args[0] if dropout is None else dropout(args[0])
    a, b = flat[f"{path}/a"], flat[f"{path}/b"]
    update = jnp.dot(jnp.dot(x.astype(a.dtype), a), b) * scale
    return y + update.astype(y.dtype)

  return intercept


def merge(params: Any, shapes: Shapes, scale: float) -> Any:
  """The base's parameters with (alpha / r)·A·B added to each targeted kernel, and no
  `lora` entry: the plain model that computes what the adapted one does."""
  flat = parameter_paths.flat(params)
  for path, _, _ in shapes:
    update = scale * (flat.pop(f"{NAME}/{path}/a") @ flat.pop(f"{NAME}/{path}/b"))
    kernel = flat[f"{path}/kernel"]
    flat[f"{path}/kernel"] = kernel + update.reshape(kernel.shape).astype(kernel.dtype)
  return parameter_paths.nested(flat)
