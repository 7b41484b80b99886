"""Causality and packing: a position sees only earlier tokens of its own document."""

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import deterministic_apply, init_decoder
from transformer_jax.config_sections import ModelConfig
from transformer_jax.models.attention import causal_mask, segment_mask

CONFIG = ModelConfig(num_layers=2, num_heads=2, model_dim=16, mlp_dim=32, max_length=8,
                     dropout_rate=0.0, use_bias=True, dtype="float32", vocab_size=11)


@pytest.fixture(scope="module")
def model_and_params():
  model, params = init_decoder(CONFIG)
  apply = deterministic_apply(model)
  return apply, params


def _logits(model_and_params, tokens, **kwargs):
  apply, params = model_and_params
  return np.asarray(apply(params, jnp.asarray(tokens, jnp.int32), **kwargs))


def test_causal_mask_by_hand():
  expected = [[True, False, False],
              [True, True, False],
              [True, True, True]]
  mask = causal_mask(3)
  assert mask.shape == (1, 1, 3, 3) and mask.dtype == jnp.bool_
  np.testing.assert_array_equal(mask[0, 0], expected)


def test_segment_mask_by_hand():
  mask = segment_mask(jnp.array([[1, 1, 2, 0]]))
  assert mask.shape == (1, 1, 4, 4)
  np.testing.assert_array_equal(mask[0, 0], [[1, 1, 0, 0],
                                             [1, 1, 0, 0],
                                             [0, 0, 1, 0],
                                             [0, 0, 0, 0]])  # Padding attends to nothing.


@pytest.mark.parametrize("t", range(7))
def test_future_token_does_not_change_past_logits(model_and_params, t):
  tokens = np.array([[3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8]])
  changed = tokens.copy()
  changed[:, t + 1] = (changed[:, t + 1] + 5) % CONFIG.vocab_size
  before, after = _logits(model_and_params, tokens), _logits(model_and_params, changed)
  # Masked scores get exactly zero weight, so positions <= t are bit for bit the same.
  np.testing.assert_array_equal(after[:, :t + 1], before[:, :t + 1])
  assert not np.allclose(after[:, t + 1], before[:, t + 1])  # The change is visible.


def test_packed_row_equals_documents_alone(model_and_params):
  first, second = [3, 1, 4], [1, 5, 9, 2, 6]
  packed = _logits(model_and_params, [first + second],
                   segment_ids=jnp.array([[1, 1, 1, 2, 2, 2, 2, 2]]),
                   positions=jnp.array([[0, 1, 2, 0, 1, 2, 3, 4]]))
  alone = [_logits(model_and_params, [first]), _logits(model_and_params, [second])]
  np.testing.assert_allclose(packed[0, :3], alone[0][0], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(packed[0, 3:], alone[1][0], rtol=1e-5, atol=1e-5)
  # Without segment_ids the second document would see the first one.
  unpacked = _logits(model_and_params, [first + second],
                     positions=jnp.array([[0, 1, 2, 0, 1, 2, 3, 4]]))
  assert not np.allclose(unpacked[0, 3:], alone[1][0], rtol=1e-3, atol=1e-3)


def test_padding_in_a_packed_row(model_and_params):
  document = [2, 7, 1]
  padded = _logits(model_and_params, [[0, 0] + document + [0, 0, 0]],
                   segment_ids=jnp.array([[0, 0, 1, 1, 1, 0, 0, 0]]),
                   positions=jnp.array([[0, 0, 0, 1, 2, 0, 0, 0]]))
  # The document does not see the padding before it.
  np.testing.assert_allclose(padded[0, 2:5], _logits(model_and_params, [document])[0],
                             rtol=1e-5, atol=1e-5)
  # Padding attends to nothing, yet its logits stay finite: weighted 0 in a loss, never NaN.
  assert np.isfinite(padded).all()
