"""Position-wise feed-forward block: D -> F -> activation -> D.  x [B, T, D].

activation: 'gelu' (exact erf, as nanoGPT), 'gelu_tanh' (the tanh approximation, GPT-2's
"gelu_new"), 'relu', or 'swiglu' (silu(x·W_gate) ⊙ x·W_in, one extra [D, F] kernel named `gate`).
"""

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
  activation: str = "gelu"

  @nn.compact
  def __call__(self, x: jax.Array, *, deterministic: bool) -> jax.Array:
    def projection(features, axes, name, **options):
      return Projection(output_shape=(features,), kernel_axes=axes, use_bias=self.use_bias,
                        dtype=self.dtype, name=name, **options)

    h = projection(self.mlp_dim, ("embed", "mlp"), "input")(x)
    if self.activation == "gelu":
      h = nn.gelu(h, approximate=False)  # Exact (erf) GELU, as nanoGPT uses.
    elif self.activation == "gelu_tanh":
      h = nn.gelu(h, approximate=True)  # GPT-2's tanh approximation (Hugging Face gelu_new).
    elif self.activation == "relu":
      h = nn.relu(h)
    elif self.activation == "swiglu":
      h = nn.silu(projection(self.mlp_dim, ("embed", "mlp"), "gate")(x)) * h
    else:
      raise ValueError(f"model.activation: unknown {self.activation!r}")
    h = projection(x.shape[-1], ("mlp", "embed"), "output",
                   init_stddev=self.output_init_stddev)(h)
    return nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
