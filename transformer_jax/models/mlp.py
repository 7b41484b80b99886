"""Position-wise feed-forward block: D -> F -> GELU -> D.  x [B, T, D]."""

from typing import Any

import flax.linen as nn
import jax

from transformer_jax.models.projection import Projection


class Mlp(nn.Module):
  mlp_dim: int
  dropout_rate: float
  use_bias: bool
  dtype: Any
  output_init_stddev: float

  @nn.compact
  def __call__(self, x: jax.Array, *, deterministic: bool) -> jax.Array:
    h = Projection((self.mlp_dim,), ("embed", "mlp"), use_bias=self.use_bias,
                   dtype=self.dtype, name="input")(x)
    h = nn.gelu(h, approximate=False)  # Exact (erf) GELU, as nanoGPT uses.
    h = Projection((x.shape[-1],), ("mlp", "embed"), use_bias=self.use_bias, dtype=self.dtype,
                   init_stddev=self.output_init_stddev, name="output")(h)
    return nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
