"""Multi-head attention: self- or cross-, grouped key/value heads, plain or fused.

Shapes: x [B, T, D] queries' inputs; inputs_kv [B, S, D] keys' and values'
inputs (x itself for self-attention); mask [B|1, 1, T, S] (True = may attend);
q [B, T, H, K]; k, v [B, S, G, K] with G dividing H; scores [B, H, T, S].
With a KV cache (`transformer_jax.models.kv_cache`, C slots) the keys are the
cache's: self-attention masks are [B|1, 1, T, C].
A `PrefixKV` of P entries (prefix tuning) goes in front of the keys and values,
visible to every query, in training and with a cache alike.
Score functions live in `transformer_jax.models.attention_scores`.
"""

from typing import Any, Optional

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from transformer_jax import config_choices
from transformer_jax.models import attention_scores, initializers, kv_cache
from transformer_jax.models.attention_scores import heads_first
from transformer_jax.models import positions as positions_lib
from transformer_jax.models.outputs import AttentionOutput
from transformer_jax.models.projection import Projection


class PrefixKV(flax.struct.PyTreeNode):
  """Extra key/value entries in front of one self-attention layer's own.

  keys, values [B|1, P, G, K]: used as they are (no projection, no rotation), so
  they carry no position; every query sees all P of them.
  """
  keys: jax.Array
  values: jax.Array


def causal_mask(length: int) -> jax.Array:
  """[1, 1, T, T] lower-triangular boolean mask: query t sees keys 0..t."""
  return jnp.tril(jnp.ones((length, length), dtype=bool))[None, None]


def segment_mask(segment_ids: jax.Array) -> jax.Array:
  """[B, 1, T, T] mask allowing attention only within a segment (document).

  segment_ids: [B, T] int, 0 marks padding, which attends to nothing.
  """
  same = segment_ids[:, None, :, None] == segment_ids[:, None, None, :]
  return same & (segment_ids[:, None, :, None] != 0)


def prompt_segment_mask(segment_ids: jax.Array, num_prompt: int) -> jax.Array:
  """[B, 1, P + T, P + T]: `segment_mask` with P prompt slots in front of the tokens.

  segment_ids [B, T] (0 = padding). Every real token sees the prompt slots and its
  own segment; a prompt slot sees the prompt slots and every real token (a causal
  mask, combined with this one, leaves it only the prompt slots before it).
  """
  batch, _ = segment_ids.shape
  real = segment_ids != 0
  prompt_rows = jnp.concatenate([jnp.ones((batch, num_prompt, num_prompt), bool),
                                 jnp.broadcast_to(real[:, None, :], (batch, num_prompt,
                                                                      real.shape[1]))], axis=-1)
  token_rows = jnp.concatenate([
      jnp.broadcast_to(real[:, :, None], real.shape + (num_prompt,)),
      segment_mask(segment_ids)[:, 0]], axis=-1)
  return jnp.concatenate([prompt_rows, token_rows], axis=1)[:, None]


def check_options(score: str, implementation: str, num_heads: int, num_kv_heads: int) -> None:
  """Raises ValueError naming the config field of the first invalid option."""
  problem = config_choices.attention_problem(score, implementation, num_heads, num_kv_heads)
  if problem is not None:
    raise ValueError(f"{problem[0]}: {problem[1]}")


def with_prefix(k: jax.Array, v: jax.Array, mask: Optional[jax.Array],
                prefix: PrefixKV) -> tuple[jax.Array, jax.Array, Optional[jax.Array]]:
  """k, v [B, S, G, K] and mask [B|1, 1, T, S] with the P prefix entries in front:
  [B, P + S, G, K] and [B|1, 1, T, P + S], the prefix visible to every query."""
  def front(entries, after):
    entries = jnp.broadcast_to(entries.astype(after.dtype), (after.shape[0],) + entries.shape[1:])
    return jnp.concatenate([entries, after], axis=1)
  if mask is not None:
    visible = jnp.ones(mask.shape[:-1] + (prefix.keys.shape[1],), bool)
    mask = jnp.concatenate([visible, mask], axis=-1)
  return front(prefix.keys, k), front(prefix.values, v), mask


def attend(scores: jax.Array, v: jax.Array, mask: jax.Array | None,
           dropout_fn=None) -> tuple[jax.Array, jax.Array]:
  """Masked softmax over keys, then the weighted sum of values; shared by every score.

  scores [B, H, T, S] float32; v [B, S, G, K]; mask [B|1, 1, T, S] or None (all
  visible) -> (out [B, T, H, K], weights [B, H, T, S] float32, before dropout).
  """
  batch, heads, length, _ = scores.shape
  groups, head_dim = v.shape[2], v.shape[3]
  if mask is not None:
    # The most negative float, not -inf: a row with no visible key (padding)
    # gets uniform weights instead of NaN.
    scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
  weights = jax.nn.softmax(scores, axis=-1)
  mixing = weights.astype(v.dtype)
  if dropout_fn is not None:
    mixing = dropout_fn(mixing)
  out = jnp.matmul(mixing.reshape(batch * groups, -1, scores.shape[-1]), heads_first(v, groups))
  return jnp.swapaxes(out.reshape(batch, heads, length, head_dim), 1, 2), weights


def dot_product_attention(q, k, v, mask, dropout_fn=None):
  """softmax(q·kᵀ/√K, masked) · v.

  q [B, T, H, K], k/v [B, S, G, K], mask [B|1, 1, T, S] -> [B, T, H, K].
  """
  return attend(attention_scores.scaled_dot(q, k), v, mask, dropout_fn)[0]


def fused_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array | None,
                    score: str, implementation: str = "fused") -> jax.Array:
  """`jax.nn.dot_product_attention` for score 'dot' or 'scaled_dot'; no dropout.

  q [B, T, H, K], k/v [B, S, G, K], mask [B|1, 1, T, S] -> [B, T, H, K].
  implementation 'fused' lets JAX pick its backend (jax 0.10 always picks XLA);
  'cudnn' asks for NVIDIA's fused kernel (GPU, bfloat16 or float16).
  """
  scale = 1.0 if score == "dot" else None  # None: JAX's own 1/√K.
  if mask is not None:
    mask = jnp.asarray(mask, dtype=bool)  # An integer mask would be rejected.
  return jax.nn.dot_product_attention(
      q, k, v, mask=mask, scale=scale,
      implementation="cudnn" if implementation == "cudnn" else None)


class MultiHeadAttention(nn.Module):
  """Attention with H query heads and G key/value heads of width K; output back to D.

  score: 'scaled_dot' (default), 'dot' or 'additive' (adds per-head parameters
  `additive_query` [H, K, K], `additive_key` [G, K, K], `additive_vector` [H, K]).
  num_kv_heads: G; 0 means G = H (multi-head), 1 is multi-query attention.
  implementation: 'plain', 'fused' (`jax.nn.dot_product_attention`) or 'cudnn'; dot-product
  scores only, no attention dropout, no returned weights).
  rope: rotate queries and keys by their positions (RoPE) before scoring.
  """
  num_heads: int
  head_dim: int
  dropout_rate: float
  use_bias: bool
  dtype: Any
  output_init_stddev: float
  score: str = "scaled_dot"
  num_kv_heads: int = 0
  implementation: str = "plain"
  rope: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array | None, *, deterministic: bool,
               inputs_kv: jax.Array | None = None, positions: jax.Array | None = None,
               cache: kv_cache.KVCache | None = None, prefix: Optional[PrefixKV] = None,
               return_weights: bool = False) -> AttentionOutput:
    """x [B, T, D], inputs_kv [B, S, D] or None (self-attention) -> outputs [B, T, D].

    positions [B, T] (self-attention with rope): each token's position in its document.
    cache: the result carries the updated cache. Self-attention: x's keys and
    values are written at cache.index and x attends to all C slots (mask
    [B|1, 1, T, C]). Cross-attention: an unfilled cache is filled with inputs_kv's
    keys and values; a filled one is used as it is and inputs_kv is not read.
    prefix: entries attended in front of the keys (never written to the cache).
    return_weights: the result carries the attention weights [B, H, T, P + S].
    """
    check_options(self.score, self.implementation, self.num_heads, self.num_kv_heads)
    fused = self.implementation != "plain"
    train_dropout = self.dropout_rate > 0 and not deterministic
    if fused and train_dropout:
      raise ValueError("model.attention_impl: 'fused' applies no attention dropout; "
                       "use 'plain' or model.dropout_rate=0 to train")
    if fused and return_weights:
      raise ValueError("model.attention_impl: 'fused' cannot return attention weights")
    source = x if inputs_kv is None else inputs_kv
    kv_heads = self.num_kv_heads or self.num_heads
    def project(name, inputs, heads, heads_axis):
      return Projection(output_shape=(heads, self.head_dim),
                        kernel_axes=("embed", heads_axis, "head_dim"),
                        use_bias=self.use_bias, dtype=self.dtype, name=name)(inputs)
    q = project("query", x, self.num_heads, "heads")
    cached_source = cache is not None and inputs_kv is not None and cache.keys is not None
    if cached_source:
      k, v = cache.keys, cache.values
    else:
      k, v = (project("key", source, kv_heads, "kv_heads"),
              project("value", source, kv_heads, "kv_heads"))
    if self.rope:
      if positions is None or inputs_kv is not None:
        raise ValueError("model.position: rope needs positions and self-attention")
      q, k = positions_lib.apply_rope(q, positions), positions_lib.apply_rope(k, positions)
    if cache is not None:
      if inputs_kv is None:
        cache = kv_cache.write(cache, k, v)
        k, v = cache.keys, cache.values
      elif not cached_source:
        cache = kv_cache.KVCache(k, v, jnp.asarray(k.shape[1], jnp.int32))
    if prefix is not None:
      k, v, mask = with_prefix(k, v, mask, prefix)
    weights = None
    if fused:
      y = fused_attention(q, k, v, mask, self.score, self.implementation)
    else:
      dropout_fn = None
      if train_dropout:
        dropout_fn = nn.Dropout(self.dropout_rate, deterministic=False)
      y, weights = attend(self._scores(q, k), v, mask, dropout_fn)
    y = Projection(output_shape=(x.shape[-1],), kernel_axes=("heads", "head_dim", "embed"),
                   num_input_axes=2, use_bias=self.use_bias, dtype=self.dtype,
                   init_stddev=self.output_init_stddev, name="output")(y)
    return AttentionOutput(outputs=y, cache=cache, weights=weights if return_weights else None)

  def _scores(self, q: jax.Array, k: jax.Array) -> jax.Array:
    """[B, T, H, K], [B, S, G, K] -> [B, H, T, S] float32 for `self.score`."""
    if self.score == "dot":
      return attention_scores.dot(q, k)
    if self.score == "scaled_dot":
      return attention_scores.scaled_dot(q, k)
    heads, kv_heads, width = q.shape[2], k.shape[2], self.head_dim
    # Stddev 1/√K keeps q·W_q at the scale of q, so tanh starts in its sloped
    # range rather than flat (tiny inputs) or saturated.
    def param(name, names, shape):
      return self.param(name, initializers.kernel(names, width**-0.5), shape,
                        jnp.float32).astype(self.dtype)
    query_kernel = param("additive_query", ("heads", "head_dim", "additive_dim"),
                         (heads, width, width))
    key_kernel = param("additive_key", ("kv_heads", "head_dim", "additive_dim"),
                       (kv_heads, width, width))
    vector = param("additive_vector", ("heads", "additive_dim"), (heads, width))
    return attention_scores.additive(q, k, query_kernel, key_kernel, vector)
