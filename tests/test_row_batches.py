"""Batches of pre-built rows: epochs of permutations, a pure function of (seed, step)."""

import numpy as np

from transformer_jax.data.batches.row_batches import example_indices, rows_batch_at


def test_each_epoch_visits_every_row_once():
  # 10 rows, batches of 4: steps 0..4 cover two epochs (20 examples).
  drawn = np.concatenate([example_indices(7, step, 4, 10) for step in range(5)])
  assert sorted(drawn[:10].tolist()) == list(range(10))
  assert sorted(drawn[10:].tolist()) == list(range(10))
  assert drawn[:10].tolist() != drawn[10:].tolist()  # A new permutation per epoch.


def test_pure_function_of_seed_and_step():
  assert example_indices(3, 41, 6, 50).tolist() == example_indices(3, 41, 6, 50).tolist()
  assert example_indices(3, 41, 6, 50).tolist() != example_indices(4, 41, 6, 50).tolist()


def test_processes_split_the_global_batch():
  rows = {"inputs": np.arange(40).reshape(20, 2)}
  whole = rows_batch_at(rows, 0, 3, 8)["inputs"]
  parts = [rows_batch_at(rows, 0, 3, 8, process_index=p, process_count=2)["inputs"]
           for p in range(2)]
  np.testing.assert_array_equal(np.concatenate(parts), whole)
