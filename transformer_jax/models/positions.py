"""Parameter-free position encodings: sinusoidal embeddings and rotary (RoPE).

Shapes: positions [B, T] int (per-document in packed rows); embeddings [B, T, D];
q, k [B, T, H, K]. The learned embedding needs no code here: it is an `Embedding` table
over positions (`embedding.embed`).
"""

import jax
import jax.numpy as jnp


def _inverse_frequencies(dim: int, base: float) -> jax.Array:
  """[dim // 2] float32: base^(-2i/dim) for i = 0 .. dim/2 - 1."""
  even = jnp.arange(0, dim, 2, dtype=jnp.float32)
  return jnp.power(jnp.float32(base), -even / dim)


def sinusoidal_embedding(positions: jax.Array, dim: int) -> jax.Array:
  """positions [B, T] int -> [B, T, dim] float32, the Transformer paper's encoding.

  PE[pos, 2i] = sin(pos / 10000^(2i/dim)), PE[pos, 2i+1] = cos(pos / 10000^(2i/dim)).
  Computed directly rather than by indexing a table, so positions need no upper
  bound known in advance.
  """
  if dim % 2:
    raise ValueError(f"model.model_dim must be even for sinusoidal positions, got {dim}")
  angles = positions.astype(jnp.float32)[..., None] * _inverse_frequencies(dim, 10000.0)
  # Interleave sin and cos (…, dim/2, 2) -> (…, dim), as in the paper, not two halves.
  return jnp.stack([jnp.sin(angles), jnp.cos(angles)], axis=-1).reshape(
      positions.shape + (dim,))


def sinusoidal_table(length: int, dim: int) -> jax.Array:
  """[length, dim] float32: row p is the encoding of position p."""
  return sinusoidal_embedding(jnp.arange(length)[None], dim)[0]


def _rotate_half(x: jax.Array) -> jax.Array:
  """[..., K] -> [..., K]: (x1, x2) -> (-x2, x1) with x1, x2 the two halves."""
  first, second = jnp.split(x, 2, axis=-1)
  return jnp.concatenate([-second, first], axis=-1)


def apply_rope(x: jax.Array, positions: jax.Array, base: float = 10000.0) -> jax.Array:
  """Rotary position embedding.  x [B, T, H, K], positions [B, T] int -> [B, T, H, K].

  GPT-NeoX/LLaMA "rotate half" convention: component i is paired with i + K/2
  and the pair is rotated by the angle position * base^(-2i/K). Applied to both
  q and k, the score q(t)·k(s) then depends on positions only through t - s.
  Computed in float32 (bfloat16 angles lose whole turns at long positions) and
  cast back to x.dtype.
  """
  head_dim = x.shape[-1]
  if head_dim % 2:
    raise ValueError(f"model.position: rope needs an even head dimension, got {head_dim}")
  angles = positions.astype(jnp.float32)[..., None] * _inverse_frequencies(head_dim, base)
  # [B, T, K/2] -> [B, T, 1, K]: both members of a pair share an angle; heads broadcast.
  angles = jnp.concatenate([angles, angles], axis=-1)[:, :, None, :]
  x32 = x.astype(jnp.float32)
  rotated = x32 * jnp.cos(angles) + _rotate_half(x32) * jnp.sin(angles)
  return rotated.astype(x.dtype)
