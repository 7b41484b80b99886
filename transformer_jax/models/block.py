"""One Transformer layer, shared by every family.  x [B, T, D] -> [B, T, D].

Sublayers, in order: self-attention, cross-attention over an encoder's output
(encoder-decoder decoders only) and the MLP. Each is wrapped as
  pre-norm  (GPT-2, default):        x + sublayer(norm(x))
  post-norm (Vaswani et al., BERT):  norm(x + sublayer(x)).
Parameter names (attention, cross_attention, mlp and their *_norm) are the same in
every family, so weights and sharding rules carry across.
Given a `kv_cache.LayerCache`, the attention sublayers read and extend it (incremental
decoding, one new token at a time); given a `PrefixKV`, self-attention also attends to
those entries. The block returns a `BlockOutput` either way.
"""

from typing import Optional

import flax.linen as nn
import jax

from transformer_jax.config_sections import ModelConfig
from transformer_jax.models import initializers, kv_cache
from transformer_jax.models.attention import MultiHeadAttention, PrefixKV
from transformer_jax.models.mlp import Mlp
from transformer_jax.models.normalization import make_norm
from transformer_jax.models.outputs import BlockOutput


def norm(config: ModelConfig, name: str) -> nn.Module:
  return make_norm(config.norm, epsilon=config.norm_epsilon, use_bias=config.use_bias,
                   dtype=config.dtype, name=name)


def attention(config: ModelConfig, output_stddev: float, name: str,
              cross: bool = False) -> MultiHeadAttention:
  c = config
  return MultiHeadAttention(
      num_heads=c.num_heads, head_dim=c.head_dim, dropout_rate=c.dropout_rate,
      use_bias=c.use_bias, dtype=c.dtype, output_init_stddev=output_stddev, score=c.attention,
      num_kv_heads=c.num_kv_heads, implementation=c.attention_impl,
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
               cache: Optional[kv_cache.LayerCache] = None,
               prefix: Optional[PrefixKV] = None,
               return_attention_weights: bool = False) -> BlockOutput:
    """mask [B|1, 1, T, T] ([B|1, 1, T, C] with a cache); positions [B, T];
    encoded [B, S, D]; cross_mask [B, 1, T, S]; prefix: self-attention's extra entries.
    """
    c = self.config
    # GPT-2: residual-path projections scaled by 1/sqrt(2L) at init.
    output_stddev = initializers.STDDEV / (2 * self.num_layers) ** 0.5
    self_attention = attention(c, output_stddev, "attention")
    mlp = Mlp(mlp_dim=c.mlp_dim, dropout_rate=c.dropout_rate, use_bias=c.use_bias,
              dtype=c.dtype, output_init_stddev=output_stddev, activation=c.activation,
              name="mlp")
    dropout = nn.Dropout(c.dropout_rate)
    attention_norm, mlp_norm = norm(c, "attention_norm"), norm(c, "mlp_norm")

    def residual(x, sublayer, sublayer_norm, dropout_output=True):
      drop = (lambda h: dropout(h, deterministic=deterministic)) if dropout_output else (
          lambda h: h)  # The MLP applies its own output dropout.
      if c.norm_position == "pre":
        return x + drop(sublayer(sublayer_norm(x)))
      return sublayer_norm(x + drop(sublayer(x)))

    # Sublayers return their outputs alone; their caches and weights are kept here.
    results = {}

    def self_attend(h):
      results["self"] = self_attention(
          h, mask, deterministic=deterministic, positions=positions,
          cache=None if cache is None else cache.self_attention, prefix=prefix,
          return_weights=return_attention_weights)
      return results["self"].outputs

    x = residual(x, self_attend, attention_norm)
    if encoded is not None:
      cross_attention = attention(c, output_stddev, "cross_attention", cross=True)

      def cross_attend(h):
        given = None
        if cache is not None:
          given = kv_cache.unfilled() if cache.cross_attention is None else cache.cross_attention
        results["cross"] = cross_attention(
            h, cross_mask, deterministic=deterministic, inputs_kv=encoded, cache=given,
            return_weights=return_attention_weights)
        return results["cross"].outputs

      x = residual(x, cross_attend, norm(c, "cross_attention_norm"))
    x = residual(x, lambda h: mlp(h, deterministic=deterministic), mlp_norm,
                 dropout_output=False)
    cross = results.get("cross")
    layer_cache = None
    if cache is not None:
      layer_cache = kv_cache.LayerCache(results["self"].cache,
                                        None if cross is None else cross.cache)
    return BlockOutput(hidden_states=x, cache=layer_cache,
                       attention_weights=results["self"].weights,
                       cross_attention_weights=None if cross is None else cross.weights)
