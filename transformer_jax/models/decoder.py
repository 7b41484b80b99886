"""GPT-2 style decoder-only Transformer.

Token + learned position embeddings, pre-LayerNorm blocks of causal multi-head
attention and a GELU MLP, final LayerNorm, output projection tied to the token
embedding. Pure: dropout randomness comes from the caller's `rngs={'dropout': key}`
and is used only when `deterministic=False`.
"""

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.configuration import ModelConfig
from transformer_jax.models import initializers
from transformer_jax.models.attention import MultiHeadAttention, causal_mask, segment_mask
from transformer_jax.models.mlp import Mlp


def _layer_norm(config: ModelConfig, name: str) -> nn.LayerNorm:
  return nn.LayerNorm(epsilon=1e-5, use_bias=config.use_bias, dtype=config.dtype, name=name,
                      scale_init=initializers.scale(("embed",)),
                      bias_init=initializers.bias(("embed",)))


class DecoderBlock(nn.Module):
  """x + attention(norm(x)), then x + mlp(norm(x)).  x [B, T, D]."""
  config: ModelConfig

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array, *, deterministic: bool) -> jax.Array:
    c = self.config
    # GPT-2: residual-path projections scaled by 1/sqrt(2L) at init.
    output_stddev = initializers.STDDEV / (2 * c.num_layers) ** 0.5
    h = _layer_norm(c, "attention_norm")(x)
    h = MultiHeadAttention(c.num_heads, c.head_dim, c.dropout_rate, c.use_bias, c.dtype,
                           output_stddev, name="attention")(h, mask, deterministic=deterministic)
    x = x + nn.Dropout(c.dropout_rate)(h, deterministic=deterministic)
    h = _layer_norm(c, "mlp_norm")(x)
    return x + Mlp(c.mlp_dim, c.dropout_rate, c.use_bias, c.dtype, output_stddev,
                   name="mlp")(h, deterministic=deterministic)


class Decoder(nn.Module):
  """Causal language model: tokens [B, T] -> logits [B, T, V] (float32)."""
  config: ModelConfig

  @nn.compact
  def __call__(self, tokens: jax.Array, *, deterministic: bool,
               positions: Optional[jax.Array] = None,
               segment_ids: Optional[jax.Array] = None) -> jax.Array:
    """positions [B, T] and segment_ids [B, T] (0 = padding) are for packed rows."""
    c = self.config
    length = tokens.shape[1]
    if positions is None:
      positions = jnp.arange(length)[None]
    token_embedding = nn.Embed(
        c.vocab_size, c.model_dim, dtype=c.dtype, name="token_embedding",
        embedding_init=initializers.kernel(("vocab", "embed")))
    position_embedding = nn.Embed(
        c.max_length, c.model_dim, dtype=c.dtype, name="position_embedding",
        embedding_init=initializers.kernel(("length", "embed")))
    x = token_embedding(tokens) + position_embedding(positions)
    x = nn.Dropout(c.dropout_rate)(x, deterministic=deterministic)
    mask = causal_mask(length)
    if segment_ids is not None:
      mask = mask & segment_mask(segment_ids)
    for i in range(c.num_layers):
      x = DecoderBlock(c, name=f"block_{i}")(x, mask, deterministic=deterministic)
    x = _layer_norm(c, "final_norm")(x)
    return token_embedding.attend(x).astype(jnp.float32)
