"""Key/value caches for incremental decoding: keys and values computed once, reused each step.

Why: without a cache, token t costs a forward pass over all t tokens before it,
so generating N tokens costs O(N²) token-passes; with one, a step runs the model
on one new token per row and attends to the keys and values already stored.

Shapes: B batch, C cache slots, S source length, G key/value heads, K head dim,
T new tokens in one call.
  KVCache      one attention layer: keys, values [B, C, G, K] and index [] int32,
               the slots written so far (new keys go to index .. index + T - 1).
               C is fixed when the cache is made, so its shape never changes in
               a `jax.lax.while_loop`. Self-attention keys are stored after RoPE,
               rotated by their tokens' true positions.
               Cross-attention (encoder-decoder) caches hold the source's keys
               and values [B, S, G, K], projected from the encoder output by the
               first (prefill) call and then reused as they are.
  LayerCache   one block's self-attention cache and, once filled, its
               cross-attention cache (None before the prefill and without an encoder).
  DecoderCache a decoder's per-layer caches and valid [B, C] bool: True where a slot
               holds a real token. Left padding and slots not yet written are
               False, so no row attends to them.
Every array leaf but `index` has the batch axis first, so beam search can reorder
a cache leaf by leaf.
"""

from typing import Optional

import flax.struct
import jax
import jax.numpy as jnp

import flax.linen as nn

from transformer_jax.config_sections import ModelConfig

# Logical names of cached keys and values [B, C, G, K]: inside a mesh and rules context
# (decoding on a sharded model) their heads are laid out like the attention's.
CACHE_AXES = ("activation_batch", "cache_length", "activation_kv_heads", "head_dim")


class KVCache(flax.struct.PyTreeNode):
  keys: Optional[jax.Array]  # [B, C, G, K]; None: unfilled (cross-attention before prefill).
  values: Optional[jax.Array]  # [B, C, G, K]
  index: Optional[jax.Array]  # [] int32: slots written.


class LayerCache(flax.struct.PyTreeNode):
  self_attention: KVCache
  cross_attention: Optional[KVCache] = None  # Encoder-decoder, from the prefill on.


class DecoderCache(flax.struct.PyTreeNode):
  layers: tuple[LayerCache, ...]
  valid: jax.Array  # [B, C] bool: the slot holds a real token.

  @property
  def index(self) -> jax.Array:
    """[] int32: slots written, the same in every layer."""
    return self.layers[0].self_attention.index

  @property
  def length(self) -> int:
    """C, the number of slots."""
    return self.valid.shape[1]


def unfilled() -> KVCache:
  """A cross-attention cache whose keys and values the next call computes from inputs_kv."""
  return KVCache(None, None, None)


def init(config: ModelConfig, batch: int, length: int) -> DecoderCache:
  """An empty cache of `length` slots for the decoder of `config`.

  An encoder-decoder's first call with the encoder output adds the cross-attention
  caches (None until then).
  """
  kv_heads = config.num_kv_heads or config.num_heads
  zeros = nn.with_logical_constraint(
      jnp.zeros((batch, length, kv_heads, config.head_dim), config.dtype), CACHE_AXES)
  layer = LayerCache(KVCache(zeros, zeros, jnp.zeros((), jnp.int32)))
  return DecoderCache((layer,) * config.num_layers,
                      jnp.zeros((batch, length), bool))


def write(cache: KVCache, keys: jax.Array, values: jax.Array) -> KVCache:
  """Stores keys, values [B, T, G, K] at slots index .. index + T - 1; index += T."""
  start = (0, cache.index, 0, 0)
  return KVCache(jax.lax.dynamic_update_slice(cache.keys, keys.astype(cache.keys.dtype), start),
                 jax.lax.dynamic_update_slice(cache.values, values.astype(cache.values.dtype),
                                              start),
                 cache.index + keys.shape[1])


def write_valid(valid: jax.Array, new_valid: jax.Array, index: jax.Array) -> jax.Array:
  """valid [B, C] with new_valid [B, T] written at slots index .. index + T - 1."""
  return jax.lax.dynamic_update_slice(valid, new_valid, (0, index))


def attention_mask(valid: jax.Array, index: jax.Array, num_new: int) -> jax.Array:
  """[B, 1, T, C]: the new token in slot index + t sees valid slots up to its own.

  valid [B, C] already includes the new tokens' slots.
  """
  slots = jnp.arange(valid.shape[1])
  query_slots = index + jnp.arange(num_new)
  causal = slots[None, :] <= query_slots[:, None]  # [T, C]
  return causal[None, None] & valid[:, None, None, :]
