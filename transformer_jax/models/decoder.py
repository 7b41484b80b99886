"""Decoder-only Transformer (GPT family).

By default GPT-2: token + learned position embeddings, pre-LayerNorm blocks of
causal multi-head scaled dot-product attention and a GELU MLP, final LayerNorm,
output projection tied to the token embedding. `model.*` fields swap the parts:
attention score, grouped/multi-query heads, fused attention, positions (learned,
sinusoidal, RoPE, none), LayerNorm or RMSNorm, pre or post norm, MLP activation.
Pure: dropout randomness comes from the caller's `rngs={'dropout': key}` and is
used only when `deterministic=False`.
"""

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.configuration import ModelConfig
from transformer_jax.models import initializers
from transformer_jax.models.attention import MultiHeadAttention, causal_mask, segment_mask
from transformer_jax.models.mlp import Mlp
from transformer_jax.models.normalization import make_norm
from transformer_jax.models.positions import sinusoidal_embedding


def _norm(config: ModelConfig, name: str) -> nn.Module:
  return make_norm(config.norm, epsilon=1e-5, use_bias=config.use_bias, dtype=config.dtype,
                   name=name)


class DecoderBlock(nn.Module):
  """x + attention(norm(x)), then x + mlp(norm(x)).  x [B, T, D]."""
  config: ModelConfig

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array, *, deterministic: bool,
               positions: Optional[jax.Array] = None) -> jax.Array:
    c = self.config
    # GPT-2: residual-path projections scaled by 1/sqrt(2L) at init.
    output_stddev = initializers.STDDEV / (2 * c.num_layers) ** 0.5
    attention = MultiHeadAttention(
        c.num_heads, c.head_dim, c.dropout_rate, c.use_bias, c.dtype, output_stddev,
        score=c.attention, num_kv_heads=c.num_kv_heads, implementation=c.attention_impl,
        rope=c.position == "rope", name="attention")
    mlp = Mlp(c.mlp_dim, c.dropout_rate, c.use_bias, c.dtype, output_stddev, c.activation,
              name="mlp")
    dropout = nn.Dropout(c.dropout_rate)
    attention_norm, mlp_norm = _norm(c, "attention_norm"), _norm(c, "mlp_norm")
    if c.norm_position == "pre":
      h = attention(attention_norm(x), mask, deterministic=deterministic, positions=positions)
      x = x + dropout(h, deterministic=deterministic)
      return x + mlp(mlp_norm(x), deterministic=deterministic)
    # Post-norm, as in "Attention Is All You Need": normalise after each residual sum.
    h = attention(x, mask, deterministic=deterministic, positions=positions)
    x = attention_norm(x + dropout(h, deterministic=deterministic))
    return mlp_norm(x + mlp(x, deterministic=deterministic))


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
    x = token_embedding(tokens)
    if c.position == "learned":
      x = x + nn.Embed(c.max_length, c.model_dim, dtype=c.dtype, name="position_embedding",
                       embedding_init=initializers.kernel(("length", "embed")))(positions)
    elif c.position == "sinusoidal":
      x = x + sinusoidal_embedding(jnp.broadcast_to(positions, tokens.shape),
                                   c.model_dim).astype(x.dtype)
    x = nn.Dropout(c.dropout_rate)(x, deterministic=deterministic)
    mask = causal_mask(length)
    if segment_ids is not None:
      mask = mask & segment_mask(segment_ids)
    block_positions = jnp.broadcast_to(positions, tokens.shape)
    for i in range(c.num_layers):
      x = DecoderBlock(c, name=f"block_{i}")(x, mask, deterministic=deterministic,
                                              positions=block_positions)
    if c.norm_position == "pre":  # Post-norm blocks already end normalised.
      x = _norm(c, "final_norm")(x)
    return token_embedding.attend(x).astype(jnp.float32)
