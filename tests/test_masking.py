"""BERT's masked-LM corruption: exact counts, never specials, the 80/10/10 shares."""

import numpy as np
import pytest

from transformer_jax.data.batches import masking

MASK = 3
ORIGINAL = 5  # Not among RANDOM_IDS, so every input says what happened to its position.
RANDOM_IDS = np.arange(10, 20, dtype=np.int32)


def _mask(tokens, maskable, seed=0, **kwargs):
  return masking.mask_tokens(tokens, maskable, np.random.default_rng(seed), mask_id=MASK,
                             random_ids=RANDOM_IDS, **kwargs)


def test_selection_counts_round_half_up_with_at_least_one():
  counts = masking.selection_counts(np.array([0, 1, 2, 3, 6, 10, 40]), 0.25)
  # 0.25·n = 0, .25, .5, .75, 1.5, 2.5, 10: half rounds up, at least 1 unless n is 0.
  assert counts.tolist() == [0, 1, 1, 1, 2, 3, 10]
  assert masking.selection_counts(np.array([0, 5, 128]), 0.0).tolist() == [0, 0, 0]
  assert masking.selection_counts(np.array([0, 5]), 1.0).tolist() == [0, 5]


def test_each_row_selects_its_exact_count_of_maskable_positions_only():
  lengths = np.array([0, 1, 2, 3, 6, 10, 40])  # Maskable positions per row; the rest special.
  tokens = np.full((7, 48), ORIGINAL, np.int32)
  tokens[:, 0] = 1  # A [CLS]-like special token.
  maskable = np.zeros((7, 48), bool)
  for row, length in enumerate(lengths):
    maskable[row, 1:1 + length] = True
  for seed in range(20):
    out = _mask(tokens, maskable, seed, mask_probability=0.25)
    assert out["weights"].sum(axis=1).tolist() == [0, 1, 1, 1, 2, 3, 10]
    assert not out["weights"][~maskable].any()
    np.testing.assert_array_equal(out["inputs"][~maskable], tokens[~maskable])
    np.testing.assert_array_equal(out["targets"], tokens)
    assert out["inputs"].dtype == out["targets"].dtype == np.int32
    assert out["weights"].dtype == np.float32
    assert set(np.unique(out["weights"]).tolist()) <= {0.0, 1.0}


def test_only_selected_positions_change():
  tokens = np.random.default_rng(1).integers(10, 20, size=(50, 30)).astype(np.int32)
  maskable = np.random.default_rng(2).random((50, 30)) < 0.7
  out = _mask(tokens, maskable)
  changed = out["inputs"] != tokens
  assert not (changed & (out["weights"] == 0)).any()
  np.testing.assert_array_equal(out["targets"], tokens)


def test_selection_is_uniform_over_maskable_positions():
  # One row, 8 maskable positions of 10, 2 chosen: each maskable one 1/4 of the time.
  maskable = np.array([[False] + [True] * 8 + [False]] * 4000)
  tokens = np.full(maskable.shape, ORIGINAL, np.int32)
  weights = _mask(tokens, maskable, mask_probability=0.25)["weights"]
  share = weights.mean(axis=0)
  assert share[0] == share[-1] == 0
  sigma = np.sqrt(0.25 * 0.75 / 4000)
  assert np.all(np.abs(share[1:-1] - 0.25) < 5 * sigma), share


def test_80_10_10_within_binomial_tolerance():
  tokens = np.full((2000, 50), ORIGINAL, np.int32)
  maskable = np.ones_like(tokens, bool)
  out = _mask(tokens, maskable)  # 0.15·50 = 7.5 -> 8 positions a row.
  selected = out["weights"] == 1
  assert selected.sum() == 2000 * 8
  chosen = out["inputs"][selected]
  randomized = np.isin(chosen, RANDOM_IDS)
  assert set(chosen.tolist()) <= {MASK, ORIGINAL} | set(RANDOM_IDS.tolist())
  assert set(chosen[randomized].tolist()) == set(RANDOM_IDS.tolist())  # All drawn.
  total = chosen.size
  for count, p in ((np.sum(chosen == MASK), 0.8), (randomized.sum(), 0.1),
                   (np.sum(chosen == ORIGINAL), 0.1)):
    assert abs(count - p * total) < 5 * np.sqrt(total * p * (1 - p)), (count, p)


def test_mask_probability_zero_weights_nothing():
  tokens = np.full((4, 16), ORIGINAL, np.int32)
  out = _mask(tokens, np.ones_like(tokens, bool), mask_probability=0.0)
  assert out["weights"].sum() == 0
  np.testing.assert_array_equal(out["inputs"], tokens)


def test_shares_of_one_and_zero():
  tokens = np.full((3, 20), ORIGINAL, np.int32)
  maskable = np.ones_like(tokens, bool)
  all_masked = _mask(tokens, maskable, mask_token_probability=1.0, random_token_probability=0)
  assert (all_masked["inputs"][all_masked["weights"] == 1] == MASK).all()
  all_random = _mask(tokens, maskable, mask_token_probability=0, random_token_probability=1.0)
  assert np.isin(all_random["inputs"][all_random["weights"] == 1], RANDOM_IDS).all()
  all_kept = _mask(tokens, maskable, mask_token_probability=0, random_token_probability=0)
  np.testing.assert_array_equal(all_kept["inputs"], tokens)
  # The same draws whatever the shares: the same positions are chosen.
  np.testing.assert_array_equal(all_masked["weights"], all_kept["weights"])


def test_same_generator_state_same_result():
  tokens = np.full((5, 12), ORIGINAL, np.int32)
  maskable = np.ones_like(tokens, bool)
  first, second = _mask(tokens, maskable, seed=7), _mask(tokens, maskable, seed=7)
  for name in first:
    np.testing.assert_array_equal(first[name], second[name])


def test_bad_shapes_and_empty_random_ids_fail():
  tokens = np.zeros((2, 4), np.int32)
  with pytest.raises(ValueError, match="must both be"):
    _mask(tokens, np.ones((2, 5), bool))
  with pytest.raises(ValueError, match="random_ids is empty"):
    masking.mask_tokens(tokens, np.ones((2, 4), bool), np.random.default_rng(0),
                        mask_id=MASK, random_ids=np.array([], np.int32))
