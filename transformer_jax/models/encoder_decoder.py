"""Encoder-decoder Transformer (Vaswani et al. 2017) for sequence-to-sequence tasks.

source [B, S] -> encoder -> encoded [B, S, D]; target inputs [B, T] -> decoder
(masked self-attention, cross-attention to `encoded`, MLP) -> logits [B, T, V].
`encode` and `decode` are separate methods so decoding runs the encoder once;
`decode` with a `kv_cache.DecoderCache` also projects the encoder output to
cross-attention keys and values once (on its first call) and reuses them.
model.share_embeddings: one table for source, target and output (a joint
vocabulary, as in the paper); else encoder and decoder own a `token_embedding` each.
Packed rows (several pairs per row, as in Flax's WMT example): pair k has segment
id k in both source and target and positions counted from its own start, so each
pair attends (self and cross) only to itself and gets the logits it would alone.
"""

from typing import Optional

import flax.linen as nn
import jax

from transformer_jax.config_sections import ModelConfig
from transformer_jax.models import embedding, kv_cache
from transformer_jax.models.decoder import Decoder
from transformer_jax.models.encoder import Encoder
from transformer_jax.models.outputs import ModelOutput


class EncoderDecoder(nn.Module):
  config: ModelConfig

  def setup(self):
    c = self.config
    shared = embedding.token_embedding(c) if c.share_embeddings else None
    self.token_embedding = shared
    self.encoder = Encoder(config=c, shared_embedding=shared)
    self.decoder = Decoder(config=c, shared_embedding=shared)

  def encode(self, source: jax.Array, *, deterministic: bool,
             source_segment_ids: Optional[jax.Array] = None,
             source_positions: Optional[jax.Array] = None,
             return_attention_weights: bool = False) -> ModelOutput:
    """source [B, S], source_segment_ids [B, S] (0 = padding) -> the encoder's ModelOutput
    (hidden_states: encoded [B, S, D]; no logits).

    source_positions [B, S]: each token's position in its pair (packed rows);
    default 0 .. S - 1.
    """
    return self.encoder(source, deterministic=deterministic, segment_ids=source_segment_ids,
                        positions=source_positions,
                        return_attention_weights=return_attention_weights)

  def decode(self, encoded: jax.Array, inputs: jax.Array, *, deterministic: bool,
             source_segment_ids: Optional[jax.Array] = None,
             segment_ids: Optional[jax.Array] = None,
             positions: Optional[jax.Array] = None,
             cache: Optional[kv_cache.DecoderCache] = None,
             return_attention_weights: bool = False) -> ModelOutput:
    """encoded [B, S, D], inputs [B, T] (<bos> + target) -> ModelOutput (logits [B, T, V]).

    segment_ids [B, T]: target segment i cross-attends only to source segment i.
    positions [B, T]: each token's position in its pair; default 0 .. T - 1, or
    with a cache the slots it fills.
    cache (from `kv_cache.init`): the output carries the updated cache; the first
    call stores the cross-attention keys and values, and later calls do not read
    `encoded`.
    """
    return self.decoder(inputs, deterministic=deterministic, positions=positions,
                        segment_ids=segment_ids, encoded=encoded,
                        source_segment_ids=source_segment_ids, cache=cache,
                        return_attention_weights=return_attention_weights)

  def __call__(self, source: jax.Array, inputs: jax.Array, *, deterministic: bool,
               source_segment_ids: Optional[jax.Array] = None,
               segment_ids: Optional[jax.Array] = None,
               source_positions: Optional[jax.Array] = None,
               positions: Optional[jax.Array] = None,
               return_attention_weights: bool = False) -> ModelOutput:
    """The decoder's ModelOutput for teacher-forced inputs. Packed rows: pair k of a row
    has segment id k on both sides and positions from 0. (The encoder's own attention
    weights come from `encode`.)"""
    encoded = self.encode(source, deterministic=deterministic,
                          source_segment_ids=source_segment_ids,
                          source_positions=source_positions).hidden_states
    return self.decode(encoded, inputs, deterministic=deterministic,
                       source_segment_ids=source_segment_ids, segment_ids=segment_ids,
                       positions=positions, return_attention_weights=return_attention_weights)
