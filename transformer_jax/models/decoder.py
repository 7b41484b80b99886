"""Decoder-only Transformer (GPT family), also the decoder of an encoder-decoder.

By default GPT-2: token + learned position embeddings, pre-LayerNorm blocks of
causal multi-head scaled dot-product attention and a GELU MLP, final LayerNorm,
output projection tied to the token embedding. `model.*` fields swap the parts:
attention score, grouped/multi-query heads, fused attention, positions (learned,
sinusoidal, RoPE, none), LayerNorm or RMSNorm, pre or post norm, MLP activation.
Given an encoder's output, every block also cross-attends to it.
Pure: dropout randomness comes from the caller's `rngs={'dropout': key}` and is
used only when `deterministic=False`.
Incremental decoding: given a `kv_cache.DecoderCache`, the tokens fill its next
slots and the call returns (logits, updated cache); see `transformer_jax.decoding`.
"""

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.configuration import ModelConfig
from transformer_jax.models import embedding, kv_cache
from transformer_jax.models.attention import causal_mask, segment_mask
from transformer_jax.models.block import TransformerBlock, norm


def cross_attention_mask(segment_ids: Optional[jax.Array],
                         source_segment_ids: Optional[jax.Array]) -> Optional[jax.Array]:
  """[B, 1, T, S]: target position t sees source position s of its own pair.

  segment_ids [B, T], source_segment_ids [B, S]; 0 = padding. t sees s only if
  source_segment_ids[s] == segment_ids[t] != 0, so in a row of packed pairs each
  target reads only its own source. In an unpacked row (every real id 1) that is
  every real source position; with segment_ids None every target position sees
  every real source position.
  """
  if source_segment_ids is None:
    return None
  mask = (source_segment_ids != 0)[:, None, None, :]
  if segment_ids is not None:
    mask = mask & (segment_ids[:, None, :, None] == source_segment_ids[:, None, None, :])
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
               source_segment_ids: Optional[jax.Array] = None,
               cache: Optional[kv_cache.DecoderCache] = None,
               last_logits_only: bool = False):
    """positions [B, T] and segment_ids [B, T] (0 = padding) are for packed or padded rows.

    encoded [B, S, D] and source_segment_ids [B, S]: the encoder's output and its
    segments; target segment i cross-attends only to source segment i (packed pairs).
    cache: the tokens fill slots index .. index + T - 1 and attend to every valid
    slot up to their own; returns (logits, updated cache). Positions default to
    the slots; segment ids then only mark padding (0), which no token attends to.
    last_logits_only: logits [B, 1, V] of the last position alone; a decoding
    prefill needs no more, and the [D, V] projection of every prompt position is
    a large share of its cost.
    """
    c = self.config
    length = tokens.shape[1]
    if positions is None:
      positions = jnp.arange(length)[None] + (0 if cache is None else cache.index)
    table = (self.shared_embedding if self.shared_embedding is not None
             else embedding.token_embedding(c))
    x = embedding.embed(c, table, tokens, positions, deterministic=deterministic)
    if cache is None:
      mask = causal_mask(length)
      if segment_ids is not None:
        mask = mask & segment_mask(segment_ids)
    else:
      new_valid = (jnp.ones(tokens.shape, bool) if segment_ids is None
                   else segment_ids != 0)
      valid = kv_cache.write_valid(cache.valid, new_valid, cache.index)
      mask = kv_cache.attention_mask(valid, cache.index, length)
    cross_mask = None
    if encoded is not None:
      cross_mask = cross_attention_mask(segment_ids, source_segment_ids)
    block_positions = jnp.broadcast_to(positions, tokens.shape)
    layer_caches = []
    for i in range(c.num_layers):
      block = TransformerBlock(c, c.num_layers, name=f"block_{i}")
      if cache is None:
        x = block(x, mask, deterministic=deterministic, positions=block_positions,
                  encoded=encoded, cross_mask=cross_mask)
      else:
        x, layer_cache = block(x, mask, deterministic=deterministic, positions=block_positions,
                               encoded=encoded, cross_mask=cross_mask, cache=cache.layers[i])
        layer_caches.append(layer_cache)
    if c.norm_position == "pre":  # Post-norm blocks already end normalised.
      x = norm(c, "final_norm")(x)
    if last_logits_only:
      x = x[:, -1:]
    logits = table.attend(x).astype(jnp.float32)
    if cache is None:
      return logits
    return logits, kv_cache.DecoderCache(tuple(layer_caches), valid)
