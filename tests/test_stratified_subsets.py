"""Low-resource training sets (data.train_examples): stratified, fixed by data.subset_seed,
nested, and what a classify run trains on."""

import collections

import pytest

from conftest import tiny_config
from transformer_jax.data.tasks import classification_data
from transformer_jax.data.tasks.stratified_subsets import stratified_order, stratified_subset
from transformer_jax.errors import ConfigError, DataError

# 30 positive, 10 negative: a 3:1 split, as uneven as a real one can be.
PAIRS = [(f"good {i}", "pos") for i in range(30)] + [(f"bad {i}", "neg") for i in range(10)]


def test_the_order_gives_each_label_its_share_by_hand():
  """Keys: pos (i + 1/2)/3, neg (i + 1/2)/1 for three pos and one neg, so the order is
  pos (1/6), neg (1/2, and ties go to the lower label rank: neg < pos), pos (1/2), pos (5/6)."""
  order = stratified_order(["pos", "pos", "neg", "pos"], seed=0)
  labels = [["pos", "pos", "neg", "pos"][i] for i in order]
  assert labels == ["pos", "neg", "pos", "pos"]
  assert sorted(order) == [0, 1, 2, 3]


@pytest.mark.parametrize("size", [4, 8, 13, 20, 39])
def test_a_subset_holds_each_label_in_proportion(size):
  counts = collections.Counter(label for _, label in stratified_subset(PAIRS, size, seed=3))
  assert sum(counts.values()) == size
  assert abs(counts["neg"] - size / 4) <= 1 and abs(counts["pos"] - 3 * size / 4) <= 1


def test_a_subset_is_fixed_by_its_seed_and_nested_in_every_larger_one():
  sizes = (4, 10, 25, 40)
  subsets = [stratified_subset(PAIRS, size, seed=7) for size in sizes]
  assert subsets[0] == stratified_subset(PAIRS, 4, seed=7)  # Fixed.
  for smaller, larger in zip(subsets, subsets[1:]):
    assert set(smaller) < set(larger)  # Nested.
  assert stratified_subset(PAIRS, 10, seed=8) != subsets[1]  # Another seed, another subset.
  assert subsets[2] == [pair for pair in PAIRS if pair in set(subsets[2])]  # Original order.
  assert stratified_subset(PAIRS, 0, seed=7) == PAIRS == subsets[3]


def test_more_examples_than_the_split_has_is_one_line():
  with pytest.raises(DataError, match="data.train_examples=41 is more than the 40"):
    stratified_subset(PAIRS, 41, seed=0)


def test_only_classify_takes_a_subset_and_it_is_not_negative():
  with pytest.raises(ConfigError, match="data.train_examples.*experiment classify"):
    tiny_config("clm", **{"data.train_examples": 10})
  with pytest.raises(ConfigError, match="data.train_examples"):
    tiny_config("classify", **{"data.train_examples": -1})


def test_a_classify_run_trains_on_the_subset_only_whatever_its_training_seed():
  splits = {"train": PAIRS, "validation": PAIRS[:4] + PAIRS[-4:], "test": PAIRS[:2] + PAIRS[-2:]}
  expected = stratified_subset(PAIRS, 8, seed=5)
  for train_seed in (1, 2):
    cfg = tiny_config("classify", **{"data.train_examples": 8, "data.subset_seed": 5,
                                     "train.seed": train_seed, "train.batch_size": 4})
    data = classification_data.build(cfg, None, splits, saved_labels=None, encoder=True,
                                     length=cfg.model.max_length)
    seen = set()
    for step in range(30):
      batch = data.train_batch_at(step)
      seen.update((tuple(row), int(label)) for row, label in zip(batch["inputs"], batch["labels"]))
    length = len(next(iter(seen))[0])
    rows = classification_data.labelled_rows(data.tokenizer, expected, data.labels, length,
                                             True, "train")
    assert seen == {(tuple(row), int(label)) for row, label in zip(rows["inputs"], rows["labels"])}
