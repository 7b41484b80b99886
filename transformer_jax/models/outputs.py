"""What the models and their layers return: one structure each, whatever the flags.

In the spirit of Gemma's `Output(logits, cache, hidden_states)`: a field that a
call did not ask for is None, so callers read fields by name and every family's
result has the same shape of answer. Axes: L layers, B batch, T queries (the
tokens of this call), S keys (the tokens, a source, or cache slots plus prefix
entries), D width, H heads, V vocabulary.
"""

from typing import Optional, Sequence

import flax.struct
import jax
import jax.numpy as jnp

from transformer_jax.models import kv_cache


class AttentionOutput(flax.struct.PyTreeNode):
  """One attention layer's result."""
  outputs: jax.Array  # [B, T, D]
  cache: Optional[kv_cache.KVCache] = None  # The updated cache, when one was given.
  weights: Optional[jax.Array] = None  # [B, H, T, S] float32, when asked (plain only).


class BlockOutput(flax.struct.PyTreeNode):
  """One Transformer block's result."""
  hidden_states: jax.Array  # [B, T, D]
  cache: Optional[kv_cache.LayerCache] = None
  attention_weights: Optional[jax.Array] = None  # [B, H, T, S]
  cross_attention_weights: Optional[jax.Array] = None  # [B, H, T, S_source]


class ModelOutput(flax.struct.PyTreeNode):
  """A model's (or an encoder's) result.

  logits: [B, T, V] float32 from the language-model head (BERT: the masked-LM
    head; a bare encoder: None); [B, 1, V] with last_logits_only.
  hidden_states: [B, T, D] the final hidden states (after the final norm), the
    input of the heads; prompt embeddings' slots are left out, so T is the tokens'.
  cache: the updated `kv_cache.DecoderCache` when one was passed.
  attention_weights: [L, B, H, T, S] float32 self-attention weights per layer when
    asked (return_attention_weights=True); S counts prefix entries and prompt slots.
  cross_attention_weights: [L, B, H, T, S_source] for an encoder-decoder, when asked.
  next_sentence_logits: [B, 2] float32, BERT's next-sentence head (1 = B follows A).
  """
  hidden_states: jax.Array
  logits: Optional[jax.Array] = None
  cache: Optional[kv_cache.DecoderCache] = None
  attention_weights: Optional[jax.Array] = None
  cross_attention_weights: Optional[jax.Array] = None
  next_sentence_logits: Optional[jax.Array] = None


def stack_layer_weights(weights: Sequence[Optional[jax.Array]],
                        num_prompt: int = 0) -> Optional[jax.Array]:
  """Per-layer attention weights [B, H, P + T, S] -> [L, B, H, T, S] (the tokens' rows);
  None when the layers returned none. One entry already [L, ...] (scanned layers) stays."""
  if weights[0] is None:
    return None
  stacked = weights[0] if len(weights) == 1 and weights[0].ndim == 5 else jnp.stack(weights)
  return stacked[..., num_prompt:, :]
