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
slots and the output carries the updated cache; see `transformer_jax.decoding`.
Adapters plug in without touching the blocks: `prompt_embeddings` go in front of
the tokens (prompt tuning), `prefix` adds key/value entries to every
self-attention (prefix tuning).
"""

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.config_sections import ModelConfig
from transformer_jax.models import embedding, initializers, kv_cache, layer_stack, precision
from transformer_jax.models.attention import (PrefixKV, causal_mask, prompt_segment_mask,
                                              segment_mask)
from transformer_jax.models.block import norm
from transformer_jax.models.outputs import ModelOutput, stack_layer_weights


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
  """Causal language model: tokens [B, T] -> ModelOutput (logits [B, T, V] float32).

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
               last_logits_only: bool = False,
               prompt_embeddings: Optional[jax.Array] = None,
               prefix: Optional[Sequence[PrefixKV]] = None,
               return_attention_weights: bool = False) -> ModelOutput:
    """positions [B, T] and segment_ids [B, T] (0 = padding) are for packed or padded rows.

    encoded [B, S, D] and source_segment_ids [B, S]: the encoder's output and its
    segments; target segment i cross-attends only to source segment i (packed pairs).
    cache: the tokens fill slots index .. index + T - 1 and attend to every valid
    slot up to their own; the output carries the updated cache. Positions default to
    the slots; segment ids then only mark padding (0), which no token attends to.
    last_logits_only: logits [B, 1, V] of the last position alone; a decoding
    prefill needs no more, and the [D, V] projection of every prompt position is
    a large share of its cost.
    prompt_embeddings [B|1, P, D]: vectors before the tokens, at positions
    0 .. P - 1; the tokens' positions (given or default) are shifted by P; every
    real token sees them. With a cache they fill the first P of this call's slots.
    prefix: one `PrefixKV` per layer, attended by every token in front of the keys.
    return_attention_weights: the output carries them (plain attention only).
    """
    c = self.config
    num_prompt = 0 if prompt_embeddings is None else prompt_embeddings.shape[1]
    length = num_prompt + tokens.shape[1]
    slots = embedding.slot_positions(num_prompt, tokens.shape[1], positions,
                           0 if cache is None else cache.index)
    table = (self.shared_embedding if self.shared_embedding is not None
             else embedding.token_embedding(c))
    x = initializers.constrain_hidden(embedding.embed(
        c, table, tokens, slots, deterministic=deterministic, prompt_embeddings=prompt_embeddings))
    if cache is None:
      mask = causal_mask(length)
      if segment_ids is not None:
        mask = mask & (prompt_segment_mask(segment_ids, num_prompt) if num_prompt
                       else segment_mask(segment_ids))
    else:
      new_valid = (jnp.ones(tokens.shape, bool) if segment_ids is None
                   else segment_ids != 0)
      new_valid = jnp.pad(new_valid, ((0, 0), (num_prompt, 0)), constant_values=True)
      valid = kv_cache.write_valid(cache.valid, new_valid, cache.index)
      mask = kv_cache.attention_mask(valid, cache.index, length)
    cross_mask = None
    if encoded is not None:
      cross_mask = cross_attention_mask(segment_ids, source_segment_ids)
      if num_prompt and cross_mask is not None:
        cross_mask = jnp.pad(cross_mask, ((0, 0), (0, 0), (num_prompt, 0), (0, 0)),
                             constant_values=True)
    x, outputs = layer_stack.run_blocks(
        c, c.num_layers, x, mask, deterministic=deterministic,
        positions=jnp.broadcast_to(slots, x.shape[:2]), encoded=encoded, cross_mask=cross_mask,
        caches=None if cache is None else cache.layers, prefix=prefix,
        return_attention_weights=return_attention_weights,
        constrain=initializers.constrain_hidden)
    if c.norm_position == "pre":  # Post-norm blocks already end normalised.
      x = norm(c, "final_norm")(x)
    x = x[:, num_prompt:]
    hidden = x[:, -1:] if last_logits_only else x
    logits = table.attend(hidden).astype(precision.ACCUMULATION)
    new_cache = None
    if cache is not None:
      new_cache = kv_cache.DecoderCache(tuple(out.cache for out in outputs), valid)
    return ModelOutput(
        hidden_states=x, logits=logits, cache=new_cache,
        attention_weights=stack_layer_weights([o.attention_weights for o in outputs], num_prompt),
        cross_attention_weights=stack_layer_weights([o.cross_attention_weights for o in outputs],
                                             num_prompt))
