"""Position-wise feed-forward block: D -> F -> GELU -> D.  x [B, T, D]."""

from typing import Any

import flax.linen as nn
import jax

from transformer_jax.models import initializers


class Mlp(nn.Module):
  mlp_dim: int
  dropout_rate: float
  use_bias: bool
  dtype: Any
  output_init_stddev: float

  @nn.compact
  def __call__(self, x: jax.Array, *, deterministic: bool) -> jax.Array:
    h = nn.Dense(self.mlp_dim, use_bias=self.use_bias, dtype=self.dtype, name="input",
                 kernel_init=initializers.kernel(("embed", "mlp")),
                 bias_init=initializers.bias(("mlp",)))(x)
    h = nn.gelu(h, approximate=True)  # GPT-2's tanh form.
    h = nn.Dense(x.shape[-1], use_bias=self.use_bias, dtype=self.dtype, name="output",
                 kernel_init=initializers.kernel(("mlp", "embed"), self.output_init_stddev),
                 bias_init=initializers.bias(("embed",)))(h)
    return nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
