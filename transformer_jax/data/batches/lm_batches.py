"""Language-model batches from one token stream, as a pure function of (seed, step).

Each row is a random window of T+1 tokens (nanoGPT's contiguous stream); inputs
are its first T tokens and targets the last T. Because a batch depends only on
(seed, step), a resumed run sees exactly the batches an uninterrupted run sees,
and there is no iterator state to checkpoint.
"""

from typing import NamedTuple

import numpy as np

from transformer_jax.errors import DataError


class Split(NamedTuple):
  train: np.ndarray  # [N_train] int32
  validation: np.ndarray  # [N_validation] int32


def split_stream(tokens: np.ndarray, validation_fraction: float, length: int) -> Split:
  """First (1 - fraction) for training, the rest for validation (deterministic)."""
  cut = int(len(tokens) * (1.0 - validation_fraction))
  split = Split(tokens[:cut], tokens[cut:])
  for name, part in split._asdict().items():
    if len(part) < length + 1:
      raise DataError(f"the {name} split has {len(part)} tokens, fewer than "
                      f"model.max_length + 1 = {length + 1}")
  return split


def window_starts(seed: int, step: int, num_rows: int, num_tokens: int,
                  length: int) -> np.ndarray:
  """[num_rows] random window offsets; the same (seed, step) always gives the same ones."""
  rng = np.random.default_rng([seed, step])
  return rng.integers(0, num_tokens - length, size=num_rows)


def batch_at(tokens: np.ndarray, seed: int, step: int, batch_size: int, length: int,
             process_index: int = 0, process_count: int = 1) -> dict[str, np.ndarray]:
  """This process's rows of the global batch for `step`.

  Returns {'inputs': [B/P, T], 'targets': [B/P, T]} int32, where P is the number
  of processes; process p gets rows p*B/P ... (p+1)*B/P - 1 of the global batch.
  """
  starts = window_starts(seed, step, batch_size, len(tokens), length)
  rows_per_process = batch_size // process_count
  starts = starts[process_index * rows_per_process:(process_index + 1) * rows_per_process]
  windows = tokens[starts[:, None] + np.arange(length + 1)[None, :]]
  return {"inputs": windows[:, :-1], "targets": windows[:, 1:]}
