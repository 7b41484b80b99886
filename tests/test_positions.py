"""Sinusoidal encodings checked by hand; RoPE's relative-position property."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from transformer_jax.config_choices import POSITIONS
from transformer_jax.models.positions import (apply_rope, sinusoidal_embedding,
                                              sinusoidal_table)

SHAPE = (1, 3, 2, 4)  # [B, T, H, K]: one shape, so RoPE compiles once for these tests.


def _normal(seed: int, shape=SHAPE) -> np.ndarray:
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_positions_constant():
  assert POSITIONS == ("sinusoidal", "learned", "rope", "none")


def test_sinusoidal_table_shape_and_dtype():
  table = sinusoidal_table(5, 6)
  assert table.shape == (5, 6) and table.dtype == jnp.float32


def test_sinusoidal_position_zero_is_sin0_cos0_interleaved():
  np.testing.assert_array_equal(sinusoidal_table(1, 6)[0], [0, 1, 0, 1, 0, 1])


def test_sinusoidal_position_one_by_hand():
  # dim 4: frequencies 10000^(0/4) = 1 and 10000^(2/4) = 100.
  expected = [math.sin(1), math.cos(1), math.sin(1 / 100), math.cos(1 / 100)]
  np.testing.assert_allclose(sinusoidal_table(2, 4)[1], expected, rtol=1e-6, atol=1e-7)


def test_sinusoidal_position_three_by_hand():
  expected = [math.sin(3), math.cos(3), math.sin(3 / 100), math.cos(3 / 100)]
  np.testing.assert_allclose(sinusoidal_table(4, 4)[3], expected, rtol=1e-6, atol=1e-7)


def test_sinusoidal_embedding_indexes_table_with_per_document_positions():
  positions = jnp.array([[0, 1, 2, 0, 1], [0, 1, 0, 1, 2]])  # Two packed rows.
  embedding = sinusoidal_embedding(positions, 8)
  assert embedding.shape == (2, 5, 8)
  np.testing.assert_array_equal(embedding, sinusoidal_table(3, 8)[positions])


def test_sinusoidal_odd_dim_names_field():
  with pytest.raises(ValueError, match=r"model\.model_dim"):
    sinusoidal_table(4, 5)


def _scores(q, k, q_positions, k_positions):
  """[B, H, T, S]: rotated q(t)·k(s) for every pair."""
  q, k = apply_rope(q, q_positions), apply_rope(k, k_positions)
  return np.einsum("bthk,bshk->bhts", q, k)


def test_rope_scores_depend_only_on_relative_position():
  q, k = _normal(0, (2,) + SHAPE)
  positions = jnp.array([[0, 1, 2]])
  shifted = positions + 37
  np.testing.assert_allclose(_scores(q, k, shifted, shifted),
                             _scores(q, k, positions, positions), atol=1e-5)


def test_rope_at_position_zero_is_identity():
  x = _normal(1)
  np.testing.assert_array_equal(apply_rope(x, jnp.zeros((1, 3), jnp.int32)), x)


def test_rope_preserves_head_vector_norms_and_dtype():
  x = _normal(2)
  rotated = apply_rope(x, jnp.array([[5, 9, 100]]))
  assert rotated.shape == x.shape and rotated.dtype == x.dtype
  np.testing.assert_allclose(np.linalg.norm(rotated, axis=-1), np.linalg.norm(x, axis=-1),
                             rtol=1e-5)
  assert apply_rope(x.astype(jnp.bfloat16), jnp.ones((1, 3), jnp.int32)).dtype == jnp.bfloat16


def test_rope_rotates_pairs_i_and_i_plus_half_by_hand():
  # K = 4: pair (0, 2) turns by pos * 1, pair (1, 3) by pos * 10000^(-1/2) = pos / 100.
  x = jnp.array([1.0, 1.0, 0.0, 0.0]).reshape(1, 1, 1, 4)
  expected = [math.cos(1), math.cos(1 / 100), math.sin(1), math.sin(1 / 100)]
  np.testing.assert_allclose(apply_rope(x, jnp.ones((1, 1), jnp.int32))[0, 0, 0], expected,
                             rtol=1e-6, atol=1e-7)


def test_rope_odd_head_dim_names_field():
  with pytest.raises(ValueError, match=r"model\.position: rope needs an even head dimension"):
    apply_rope(jnp.zeros((1, 2, 1, 3)), jnp.zeros((1, 2), jnp.int32))
