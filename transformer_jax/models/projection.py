"""Every weight matmul of the models: `Projection` layers and the tied output projection.

Attention kernels are stored as [D, H, K] and [H, K, D] so heads can later be
sharded (tensor parallelism) and checkpoints read naturally. The computation
flattens inputs and kernel to 2-D first: XLA's CPU backend runs a
[B*T, D] x [D, H*K] matmul, and above all its gradients, about twice as fast as
the equivalent dot with several batch or contracting dimensions.

One place for every weight matmul: `Projection.dot` and `Embedding.attend`
(`transformer_jax.models.embedding`) both call a method named `dot` with an input
[..., in] (2-D from a Projection) and a 2-D [in, out] kernel, so an interceptor on that name
(`flax.linen.intercept_methods`) sees each weight matrix of a model once per call,
with the module's path: where low-rank adapters or int8 weights plug in.
"""

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.models import initializers, precision


def weight_dot(x: jax.Array, kernel: jax.Array, dtype: Any) -> jax.Array:
  """x [..., in] · kernel [in, out] -> [..., out], both cast to the computation dtype."""
  return jnp.dot(x.astype(dtype), kernel.astype(dtype))


class Projection(nn.Module):
  """y[..., *out] = sum over in axes of x[..., *in] * kernel[*in, *out] (+ bias[*out]).

  x: [..., *in_shape] where in_shape = x.shape[-num_input_axes:].
  dtype: the computation's; param_dtype: the stored kernel's and bias's.
  """
  output_shape: Sequence[int]
  kernel_axes: tuple[str, ...]  # Logical names of kernel axes: input axes then output axes.
  num_input_axes: int = 1
  use_bias: bool = False
  dtype: Any = jnp.float32
  param_dtype: Any = precision.PARAMETERS
  init_stddev: float = initializers.STDDEV

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    input_shape = x.shape[-self.num_input_axes:]
    leading = x.shape[:-self.num_input_axes]
    output_shape = tuple(self.output_shape)
    kernel = self.param("kernel", initializers.kernel(self.kernel_axes, self.init_stddev),
                        input_shape + output_shape, self.param_dtype)
    fan_in, fan_out = math.prod(input_shape), math.prod(output_shape)
    y = self.dot(x.reshape(-1, fan_in), kernel.reshape(fan_in, fan_out))
    if self.use_bias:
      bias = self.param("bias", initializers.bias(self.kernel_axes[self.num_input_axes:]),
                        output_shape, self.param_dtype)
      y = y + bias.reshape(fan_out).astype(self.dtype)
    return y.reshape(leading + output_shape)

  def dot(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    """x [N, in] · kernel [in, out]: the replaceable weight matmul (see the module doc)."""
    return weight_dot(x, kernel, self.dtype)
