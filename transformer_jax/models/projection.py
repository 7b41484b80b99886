"""A linear layer whose kernel keeps its logical shape but is applied as one 2-D matmul.

Attention kernels are stored as [D, H, K] and [H, K, D] so heads can later be
sharded (tensor parallelism) and checkpoints read naturally. The computation
flattens inputs and kernel to 2-D first: XLA's CPU backend runs a
[B*T, D] x [D, H*K] matmul, and above all its gradients, about twice as fast as
the equivalent dot with several batch or contracting dimensions.
"""

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.models import initializers


class Projection(nn.Module):
  """y[..., *out] = sum over in axes of x[..., *in] * kernel[*in, *out] (+ bias[*out]).

  x: [..., *in_shape] where in_shape = x.shape[-num_input_axes:].
  """
  output_shape: Sequence[int]
  kernel_axes: tuple[str, ...]  # Logical names of kernel axes: input axes then output axes.
  num_input_axes: int = 1
  use_bias: bool = False
  dtype: Any = jnp.float32
  init_stddev: float = initializers.STDDEV

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    input_shape = x.shape[-self.num_input_axes:]
    leading = x.shape[:-self.num_input_axes]
    output_shape = tuple(self.output_shape)
    kernel = self.param("kernel", initializers.kernel(self.kernel_axes, self.init_stddev),
                        input_shape + output_shape, jnp.float32)
    fan_in, fan_out = math.prod(input_shape), math.prod(output_shape)
    y = jnp.dot(x.reshape(-1, fan_in).astype(self.dtype),
                kernel.reshape(fan_in, fan_out).astype(self.dtype))
    if self.use_bias:
      bias = self.param("bias", initializers.bias(self.kernel_axes[self.num_input_axes:]),
                        output_shape, jnp.float32)
      y = y + bias.reshape(fan_out).astype(self.dtype)
    return y.reshape(leading + output_shape)
