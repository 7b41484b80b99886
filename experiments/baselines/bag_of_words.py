"""Bag-of-words logistic regression on UCI sentiment: the results table's row (a).

  python experiments/baselines/bag_of_words.py --data_dir=../shared/data --seeds=1,2,3

The split is the project's fixed one (`transformer_jax.data.labelled`): trained on
train, the L2 penalty chosen on validation, accuracy reported on test. numpy only.

Features: the lower-cased words of a sentence (runs of letters, digits and
apostrophes) and its word bigrams, present or not, for every feature seen at least
twice in training (rarer ones would be memorised, not learned); each row is scaled to
unit length. The model is binary logistic regression (labels "0"/"1"; any two labels
work) with a bias, trained on the mean log loss + penalty/2 * |w|^2 (bias unpenalised)
by mini-batch gradient descent with momentum. A seed draws the small initial weights and
the order of the mini-batches; for each seed every penalty of the grid trains, the
one with the best validation accuracy (ties: the stronger penalty) is kept, and its
test accuracy is reported. Prints one line per seed, then mean and std over seeds.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys

import numpy as np

PENALTIES = (0.0, 1e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3)
_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
  return _WORD.findall(text.lower())


def features(text: str) -> list[str]:
  """Unigrams and bigrams (joined with a space) of a sentence."""
  tokens = words(text)
  return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:])]


def vocabulary(texts, min_count: int = 2) -> dict[str, int]:
  counts = collections.Counter(feature for text in texts for feature in set(features(text)))
  kept = sorted(feature for feature, count in counts.items() if count >= min_count)
  return {feature: index for index, feature in enumerate(kept)}


def design_matrix(texts, index: dict[str, int]) -> np.ndarray:
  """[N, F] float32: 1 where a sentence has a feature, each row scaled to unit length."""
  matrix = np.zeros((len(texts), len(index)), np.float32)
  for row, text in enumerate(texts):
    columns = [index[feature] for feature in set(features(text)) if feature in index]
    matrix[row, columns] = 1.0
  norms = np.linalg.norm(matrix, axis=1, keepdims=True)
  return matrix / np.maximum(norms, 1.0)


def train(x: np.ndarray, y: np.ndarray, penalty: float, seed: int, epochs: int = 40,
          batch_size: int = 32, learning_rate: float = 1.0,
          momentum: float = 0.9) -> tuple[np.ndarray, float]:
  """(w [F], b): logistic regression by mini-batch gradient descent with momentum.

  x: [N, F]; y: [N] in {0, 1}. The learning rate decays linearly to zero.
  """
  rng = np.random.default_rng(seed)
  w = rng.normal(0.0, 0.01, x.shape[1]).astype(np.float64)
  b, velocity_w, velocity_b = 0.0, np.zeros_like(w), 0.0
  steps, step = epochs * -(-len(y) // batch_size), 0
  for _ in range(epochs):
    order = rng.permutation(len(y))
    for start in range(0, len(y), batch_size):
      rows = order[start:start + batch_size]
      error = _sigmoid(x[rows] @ w + b) - y[rows]  # d(log loss)/d(logit)
      gradient_w = x[rows].T @ error / len(rows) + penalty * w
      gradient_b = float(np.mean(error))
      rate = learning_rate * (1 - step / steps)
      velocity_w = momentum * velocity_w - rate * gradient_w
      velocity_b = momentum * velocity_b - rate * gradient_b
      w, b, step = w + velocity_w, b + velocity_b, step + 1
  return w, b


def accuracy(x: np.ndarray, y: np.ndarray, w: np.ndarray, b: float) -> float:
  return float(np.mean((x @ w + b > 0) == (y == 1)))


def _sigmoid(z: np.ndarray) -> np.ndarray:
  return 0.5 * (1.0 + np.tanh(0.5 * z))  # Stable for large |z|.


def run(splits: dict, seed: int) -> dict:
  """{penalty, validation_accuracy, test_accuracy, features} of the chosen penalty."""
  labels = sorted({label for _, label in splits["train"]})
  if len(labels) != 2:
    raise ValueError(f"binary labels expected, got {labels}")
  index = vocabulary([text for text, _ in splits["train"]])
  data = {split: (design_matrix([text for text, _ in examples], index),
                  np.array([labels.index(label) for _, label in examples], np.float64))
          for split, examples in splits.items()}
  best = None
  for penalty in PENALTIES:
    w, b = train(*data["train"], penalty=penalty, seed=seed)
    validation = accuracy(*data["validation"], w, b)
    if best is None or validation >= best["validation_accuracy"]:
      best = {"penalty": penalty, "validation_accuracy": validation,
              "test_accuracy": accuracy(*data["test"], w, b), "features": len(index)}
  return best


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data_dir", default="", help="config.data.data_dir: where the "
                      "catalogued datasets live (default: the per-user cache)")
  parser.add_argument("--seeds", default="1,2,3")
  args = parser.parse_args(argv)
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
      __file__)))))
  # pylint: disable=import-outside-toplevel
  from transformer_jax.data.corpora import labelled
  from transformer_jax.errors import UserError
  try:
    splits = labelled.uci_sentiment_splits(args.data_dir)
  except UserError as e:  # E.g. the dataset is neither in --data_dir nor downloadable.
    raise SystemExit(f"error: {e}") from None
  print(" / ".join(f"{split} {len(examples)}" for split, examples in splits.items()))
  results = []
  for seed in (int(seed) for seed in args.seeds.split(",")):
    result = run(splits, seed)
    results.append(result["test_accuracy"])
    print(f"seed {seed}: penalty {result['penalty']:g} | validation accuracy "
          f"{result['validation_accuracy']:.4f} | test accuracy {result['test_accuracy']:.4f} "
          f"| {result['features']} features")
  spread = np.std(results, ddof=1) if len(results) > 1 else 0.0  # The sample std.
  print(f"test accuracy {np.mean(results):.4f} ± {spread:.4f} "
        f"(mean ± std over {len(results)} seeds)")


if __name__ == "__main__":
  main()
