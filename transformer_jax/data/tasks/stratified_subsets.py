"""Low-resource training sets: fixed, seeded, stratified and nested subsets of labelled data.

`data.train_examples=N` (classify) trains on N examples of the training split, the same N
for every run with the same `data.subset_seed` whatever `train.seed` is, so a learning
curve's seeds vary the training, not the data. The subset is a prefix of one ordering of
the split:

  1. each label's examples are shuffled by the generator seeded with (subset_seed, label
     rank);
  2. the i-th of a label's n_c examples gets the key (i + 1/2) / n_c, the midpoint of its
     share of [0, 1);
  3. the split is sorted by key (ties: by label rank), and a subset of N is the first N.

A prefix of that order holds each label in proportion (within one example of N · n_c / n),
and a subset is contained in every larger one (the same seed): 100 ⊂ 300 ⊂ 1000 ⊂ all.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from transformer_jax.errors import DataError


def stratified_order(labels: Sequence[str], seed: int) -> np.ndarray:
  """[n] int64: the indices of `labels` in the order whose prefixes are the subsets."""
  labels = list(labels)
  keys = np.zeros(len(labels), np.float64)
  ranks = np.zeros(len(labels), np.int64)
  for rank, label in enumerate(sorted(set(labels))):
    members = np.asarray([i for i, other in enumerate(labels) if other == label], np.int64)
    shuffled = np.random.default_rng([seed, rank]).permutation(members)
    keys[shuffled] = (np.arange(len(shuffled)) + 0.5) / len(shuffled)
    ranks[shuffled] = rank
  return np.lexsort((ranks, keys))


def stratified_subset(pairs: Sequence[tuple[str, str]], size: int, seed: int
                      ) -> list[tuple[str, str]]:
  """The first `size` (text, label) pairs of `stratified_order` (size 0: all of them), in
  their original order."""
  if size == 0 or size == len(pairs):
    return list(pairs)
  if size > len(pairs):
    raise DataError(f"data.train_examples={size} is more than the {len(pairs)} examples of "
                    "the training split")
  chosen = np.sort(stratified_order([label for _, label in pairs], seed)[:size])
  return [pairs[i] for i in chosen]
