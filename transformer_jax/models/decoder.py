"""Decoder-only Transformer (GPT family), also the decoder of an encoder-decoder.

By default GPT-2: token + learned position embeddings, pre-LayerNorm blocks of
causal multi-head scaled dot-product attention and a GELU MLP, final LayerNorm,
output projection tied to the token embedding. `model.*` fields swap the parts:
attention score, grouped/multi-query heads, fused attention, positions (learned,
sinusoidal, RoPE, none), LayerNorm or RMSNorm, pre or post norm, MLP activation.
Given an encoder's output, every block also cross-attends to it.
Pure: dropout randomness comes from the caller's `rngs={'dropout': key}` and is
used only when `deterministic=False`.
"""

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.configuration import ModelConfig
from transformer_jax.models import embedding
from transformer_jax.models.attention import causal_mask, segment_mask
from transformer_jax.models.block import TransformerBlock, norm


def cross_attention_mask(segment_ids: Optional[jax.Array],
                         source_segment_ids: Optional[jax.Array]) -> Optional[jax.Array]:
  """[B, 1, T, S]: real target positions see real source positions (0 = padding)."""
  if source_segment_ids is None:
    return None
  mask = (source_segment_ids != 0)[:, None, None, :]
  if segment_ids is not None:
    mask = mask & (segment_ids != 0)[:, None, :, None]
  return mask


class Decoder(nn.Module):
  """Causal language model: tokens [B, T] -> logits [B, T, V] (float32).

  shared_embedding: the encoder-decoder's table when source and target share one;
  otherwise the decoder owns `token_embedding`.
  """
  config: ModelConfig
  shared_embedding: Optional[nn.Module] = None

  @nn.compact
  def __call__(self, tokens: jax.Array, *, deterministic: bool,
               positions: Optional[jax.Array] = None,
               segment_ids: Optional[jax.Array] = None,
               encoded: Optional[jax.Array] = None,
               source_segment_ids: Optional[jax.Array] = None) -> jax.Array:
    """positions [B, T] and segment_ids [B, T] (0 = padding) are for packed or padded rows.

    encoded [B, S, D] and source_segment_ids [B, S]: the encoder's output and padding.
    """
    c = self.config
    length = tokens.shape[1]
    if positions is None:
      positions = jnp.arange(length)[None]
    table = (self.shared_embedding if self.shared_embedding is not None
             else embedding.token_embedding(c))
    x = embedding.embed(c, table, tokens, positions, deterministic=deterministic)
    mask = causal_mask(length)
    if segment_ids is not None:
      mask = mask & segment_mask(segment_ids)
    cross_mask = None
    if encoded is not None:
      cross_mask = cross_attention_mask(segment_ids, source_segment_ids)
    block_positions = jnp.broadcast_to(positions, tokens.shape)
    for i in range(c.num_layers):
      x = TransformerBlock(c, c.num_layers, name=f"block_{i}")(
          x, mask, deterministic=deterministic, positions=block_positions, encoded=encoded,
          cross_mask=cross_mask)
    if c.norm_position == "pre":  # Post-norm blocks already end normalised.
      x = norm(c, "final_norm")(x)
    return table.attend(x).astype(jnp.float32)
