"""Batches of pre-built rows (e.g. packed documents): training batches as a pure function
of (seed, step), evaluation batches as consecutive rows.

The rows are visited epoch by epoch, each epoch in its own permutation drawn from
(seed, epoch). Example k of the run (k = step·B + row) is therefore known without
replaying the run, so a resumed run sees exactly the batches an uninterrupted run
sees, and the only iterator state to checkpoint is the step.
"""

import jax
import numpy as np

from transformer_jax.errors import DataError


def example_indices(seed: int, step: int, batch_size: int, num_rows: int) -> np.ndarray:
  """[batch_size] row indices of the examples of `step`; each epoch visits every row once."""
  if num_rows < 1:
    raise DataError("no rows to draw batches from")
  first = step * batch_size
  positions = np.arange(first, first + batch_size)
  epochs, offsets = np.divmod(positions, num_rows)
  indices = np.empty(batch_size, np.int64)
  for epoch in np.unique(epochs):  # At most two epochs meet in one batch when B <= N.
    permutation = np.random.default_rng([seed, int(epoch)]).permutation(num_rows)
    chosen = epochs == epoch
    indices[chosen] = permutation[offsets[chosen]]
  return indices


def rows_batch_at(rows: dict[str, np.ndarray], seed: int, step: int, batch_size: int,
                  process_index: int = 0, process_count: int = 1) -> dict[str, np.ndarray]:
  """This process's share of the global batch of `step`: each leaf [B/P, ...]."""
  num_rows = len(next(iter(rows.values())))
  indices = example_indices(seed, step, batch_size, num_rows)
  share = batch_size // process_count
  indices = indices[process_index * share:(process_index + 1) * share]
  return {name: values[indices] for name, values in rows.items()}


def _pad_rows(rows: dict[str, np.ndarray], multiple: int) -> dict[str, np.ndarray]:
  """Adds zero-weight rows so the row count is a multiple of the batch size."""
  missing = -len(next(iter(rows.values()))) % multiple
  return {k: np.concatenate([v, np.zeros((missing,) + v.shape[1:], v.dtype)])
          for k, v in rows.items()}


def batches_of_rows(rows: dict[str, np.ndarray], batch_size: int) -> list[dict]:
  """Consecutive batches of `batch_size` rows (the last padded), this process's share."""
  rows = _pad_rows(rows, batch_size)
  share = batch_size // jax.process_count()
  start = jax.process_index() * share
  return [{k: v[i + start:i + start + share] for k, v in rows.items()}
          for i in range(0, len(next(iter(rows.values()))), batch_size)]
