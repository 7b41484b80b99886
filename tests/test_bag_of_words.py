"""The bag-of-words baseline (experiments/baselines/bag_of_words.py) learns what it should."""

import numpy as np

from experiments.baselines import bag_of_words


def test_features_are_lowercased_words_and_bigrams():
  assert bag_of_words.features("Not BAD, isn't it!") == [
      "not", "bad", "isn't", "it", "not bad", "bad isn't", "isn't it"]


def test_it_learns_a_separable_toy_set():
  """Positive sentences hold 'good' or 'great', negative ones 'bad' or 'awful'; the other
  words are shared noise. Every split is classified perfectly."""
  rng = np.random.default_rng(0)
  noise = ["the", "movie", "phone", "food", "was", "very", "quite", "and", "it"]

  def examples(count):
    result = []
    for i in range(count):
      label = i % 2
      cue = ["bad", "awful", "good", "great"][2 * label + int(rng.integers(2))]
      words = list(rng.choice(noise, 4)) + [cue]
      rng.shuffle(words)
      result.append((" ".join(words), str(label)))
    return result

  splits = {"train": examples(60), "validation": examples(20), "test": examples(20)}
  result = bag_of_words.run(splits, seed=1)
  assert result["validation_accuracy"] == 1.0 and result["test_accuracy"] == 1.0
  x = bag_of_words.design_matrix(["good good", "unknown words"],
                                 bag_of_words.vocabulary(["good", "good movie"], min_count=1))
  np.testing.assert_allclose(x, [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # Seen features only.
