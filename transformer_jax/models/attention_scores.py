"""Attention score functions: how strongly each query t attends to each key s.

Shapes: q [B, T, H, K]; k [B, S, G, K] with G dividing H; scores [B, H, T, S]
float32. Query head h reads key/value head h // (H/G): the H/G query heads of a
group are contiguous, the convention of `jax.nn.dot_product_attention`.

Products run heads-first: heads move next to the batch axis and the H/G query
heads of a group are stacked along the query axis, so q·kᵀ is one batched matmul
[B·G, (H/G)·T, K] x [B·G, K, S] that never copies k per query head. On CPU that
is about twice as fast as the same einsum with the batch axes in the middle.
"""

import jax
import jax.numpy as jnp

from transformer_jax.models.precision import ACCUMULATION

def heads_first(x: jax.Array, groups: int) -> jax.Array:
  """[B, S, N, K] -> [B·groups, (N/groups)·S, K], heads of one group stacked along S."""
  batch, _, _, head_dim = x.shape
  return jnp.swapaxes(x, 1, 2).reshape(batch * groups, -1, head_dim)


def dot(q: jax.Array, k: jax.Array) -> jax.Array:
  """q·k.  q [B, T, H, K], k [B, S, G, K] -> [B, H, T, S] float32."""
  batch, length, heads, _ = q.shape
  groups = k.shape[2]
  scores = jnp.matmul(heads_first(q, groups), jnp.swapaxes(heads_first(k, groups), 1, 2))
  return scores.astype(ACCUMULATION).reshape(batch, heads, length, k.shape[1])


def scaled_dot(q: jax.Array, k: jax.Array) -> jax.Array:
  """q·k/√K (Vaswani et al.): keeps score variance independent of the head width K.

  q [B, T, H, K], k [B, S, G, K] -> [B, H, T, S] float32.
  """
  # Scaling q (T·K values) rather than the scores (T·S values) is the cheaper place.
  return dot(q * q.shape[-1]**-0.5, k)


def additive(q: jax.Array, k: jax.Array, query_kernel: jax.Array, key_kernel: jax.Array,
             vector: jax.Array) -> jax.Array:
  """Bahdanau: score[h, t, s] = vector[h] · tanh(q[t, h] W_q[h] + k[s, g] W_k[g]), g = h // (H/G).

  q [B, T, H, K], k [B, S, G, K]; query_kernel [H, K, K], key_kernel [G, K, K]
  (row vectors times [in, out] kernels, like every kernel here); vector [H, K]
  -> [B, H, T, S] float32. Keys are transformed once per key/value head, so a
  group shares them as it shares k. The tanh needs a [B, H, T, S, K] tensor:
  K times the memory of a dot-product score.
  """
  batch, length, heads, head_dim = q.shape
  groups = k.shape[2]
  per_group = heads // groups
  query_features = jnp.einsum("bthi,hio->bhto", q, query_kernel)
  key_features = jnp.einsum("bsgi,gio->bgso", k, key_kernel)
  query_features = query_features.reshape(batch, groups, per_group, length, 1, head_dim)
  key_features = key_features[:, :, None, None]  # [B, G, 1, 1, S, K]
  hidden = jnp.tanh(query_features + key_features)  # [B, G, H/G, T, S, K]
  scores = jnp.einsum("bgrtsk,grk->bgrts", hidden,
                      vector.reshape(groups, per_group, head_dim))
  return scores.astype(ACCUMULATION).reshape(batch, heads, length, k.shape[1])
