"""One Transformer layer, shared by every family.  x [B, T, D] -> [B, T, D].

Sublayers, in order: self-attention, cross-attention over an encoder's output
(encoder-decoder decoders only) and the MLP. Each is wrapped as
  pre-norm  (GPT-2, default):        x + sublayer(norm(x))
  post-norm (Vaswani et al., BERT):  norm(x + sublayer(x)).
Parameter names (attention, cross_attention, mlp and their *_norm) are the same in
every family, so weights and sharding rules carry across.
Given a `kv_cache.LayerCache`, the attention sublayers read and extend it and the
block returns (x, updated cache): incremental decoding, one new token at a time.
"""

from typing import Optional

import flax.linen as nn
import jax

from transformer_jax.configuration import ModelConfig
from transformer_jax.models import initializers, kv_cache
from transformer_jax.models.attention import MultiHeadAttention
from transformer_jax.models.mlp import Mlp
from transformer_jax.models.normalization import make_norm


def norm(config: ModelConfig, name: str) -> nn.Module:
  return make_norm(config.norm, epsilon=1e-5, use_bias=config.use_bias, dtype=config.dtype,
                   name=name)


def attention(config: ModelConfig, output_stddev: float, name: str,
              cross: bool = False) -> MultiHeadAttention:
  c = config
  return MultiHeadAttention(
      c.num_heads, c.head_dim, c.dropout_rate, c.use_bias, c.dtype, output_stddev,
      score=c.attention, num_kv_heads=c.num_kv_heads, implementation=c.attention_impl,
      rope=c.position == "rope" and not cross, name=name)


class TransformerBlock(nn.Module):
  """Self-attention (masked by `mask`), optional cross-attention, MLP.

  num_layers: the depth of the stack this block sits in (scales the init).
  """
  config: ModelConfig
  num_layers: int

  @nn.compact
  def __call__(self, x: jax.Array, mask: Optional[jax.Array], *, deterministic: bool,
               positions: Optional[jax.Array] = None, encoded: Optional[jax.Array] = None,
               cross_mask: Optional[jax.Array] = None,
               cache: Optional[kv_cache.LayerCache] = None):
    """mask [B|1, 1, T, T]; positions [B, T]; encoded [B, S, D]; cross_mask [B, 1, T, S].

    cache: returns (x, updated cache) instead of x; mask is then [B|1, 1, T, L].
    """
    c = self.config
    # GPT-2: residual-path projections scaled by 1/sqrt(2L) at init.
    output_stddev = initializers.STDDEV / (2 * self.num_layers) ** 0.5
    self_attention = attention(c, output_stddev, "attention")
    mlp = Mlp(c.mlp_dim, c.dropout_rate, c.use_bias, c.dtype, output_stddev, c.activation,
              name="mlp")
    dropout = nn.Dropout(c.dropout_rate)
    attention_norm, mlp_norm = norm(c, "attention_norm"), norm(c, "mlp_norm")

    def residual(x, sublayer, sublayer_norm, dropout_output=True):
      drop = (lambda h: dropout(h, deterministic=deterministic)) if dropout_output else (
          lambda h: h)  # The MLP applies its own output dropout.
      if c.norm_position == "pre":
        return x + drop(sublayer(sublayer_norm(x)))
      return sublayer_norm(x + drop(sublayer(x)))

    # Sublayers stash their updated caches here (a sublayer must return y alone).
    caches = {}

    def self_attend(h):
      if cache is None:
        return self_attention(h, mask, deterministic=deterministic, positions=positions)
      h, caches["self"] = self_attention(h, mask, deterministic=deterministic,
                                         positions=positions, cache=cache.self_attention)
      return h

    x = residual(x, self_attend, attention_norm)
    if encoded is not None:
      cross_attention = attention(c, output_stddev, "cross_attention", cross=True)

      def cross_attend(h):
        if cache is None:
          return cross_attention(h, cross_mask, deterministic=deterministic, inputs_kv=encoded)
        given = cache.cross_attention
        h, caches["cross"] = cross_attention(
            h, cross_mask, deterministic=deterministic, inputs_kv=encoded,
            cache=kv_cache.unfilled() if given is None else given)
        return h

      x = residual(x, cross_attend, norm(c, "cross_attention_norm"))
    x = residual(x, lambda h: mlp(h, deterministic=deterministic), mlp_norm,
                 dropout_output=False)
    if cache is None:
      return x
    return x, kv_cache.LayerCache(caches["self"], caches.get("cross"))
