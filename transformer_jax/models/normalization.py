"""Normalisation layers over the model width: LayerNorm or RMSNorm.  x [..., D]."""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.config_choices import NORMS
from transformer_jax.models import initializers, precision


class RMSNorm(nn.Module):
  """y = x / sqrt(mean(x², -1) + epsilon) * scale.  x [..., D] -> [..., D] in `dtype`.

  No mean subtraction and no bias (Zhang & Sennrich 2019, as in LLaMA). The
  statistic is taken in float32 whatever `dtype` is, since squares of bfloat16
  activations lose too much precision; `scale` [D] stays float32 like every parameter.
  """
  epsilon: float = 1e-6
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    scale = self.param("scale", initializers.scale(("embed",)), (x.shape[-1],),
                       precision.PARAMETERS)
    x32 = x.astype(precision.ACCUMULATION)
    mean_square = jnp.mean(jnp.square(x32), axis=-1, keepdims=True)
    return (x32 * jax.lax.rsqrt(mean_square + self.epsilon) * scale).astype(self.dtype)


def make_norm(kind: str, *, epsilon: float, use_bias: bool, dtype: Any,
              name: str) -> nn.Module:
  """The normalisation layer `kind` (one of NORMS); use_bias only affects layernorm."""
  if kind == "layernorm":
    return nn.LayerNorm(epsilon=epsilon, use_bias=use_bias, dtype=dtype, name=name,
                        scale_init=initializers.scale(("embed",)),
                        bias_init=initializers.bias(("embed",)))
  if kind == "rmsnorm":
    return RMSNorm(epsilon=epsilon, dtype=dtype, name=name)
  raise ValueError(f"model.norm must be one of {', '.join(NORMS)}, got {kind!r}")
