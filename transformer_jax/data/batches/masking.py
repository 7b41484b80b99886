"""BERT's masked-LM corruption: choose positions to predict, then hide most of them.

Of a row's maskable tokens (not special tokens, not padding) a fixed number is
chosen, uniformly without replacement; of those, 80% become <mask>, 10% a random
token and 10% stay as they are (the shares are arguments). Keeping and replacing
some chosen tokens means the model cannot learn that only <mask> needs
predicting, so its representation of every token stays useful for fine-tuning.

A row predicts exactly round(p·n) of its n maskable tokens rather than a
binomial number, so every row carries the same share of the loss. The rounding
is half up (floor(p·n + 1/2)), and a row with any maskable token predicts at
least one, so short rows still teach something (unless p is 0).

`mask_tokens` draws from one generator; `draw` and `apply_draws` split that so a
batch whose rows have generators of their own (`sentence_pairs.batch_at`) is
still masked in one vectorized pass.

Axis legend: B batch, T length.
"""

from typing import NamedTuple

import numpy as np


def selection_counts(num_maskable: np.ndarray, mask_probability: float) -> np.ndarray:
  """[B] how many positions each row predicts, from its [B] number of maskable tokens.

  floor(p·n + 1/2) (half rounds up), at least 1 when n > 0 and p > 0, 0 when n == 0.
  """
  num_maskable = np.asarray(num_maskable, np.int64)
  counts = np.floor(mask_probability * num_maskable + 0.5).astype(np.int64)
  if mask_probability > 0:
    counts = np.maximum(counts, 1)
  return np.minimum(counts, num_maskable)


class Draws(NamedTuple):
  """The random numbers masking uses, [B, T] each; row b's come from row b's generator."""
  keys: np.ndarray  # float64 in [0, 1): the smallest keys among maskable positions are chosen.
  actions: np.ndarray  # float64 in [0, 1): below p_mask -> <mask>, then random, then keep.
  replacements: np.ndarray  # int64 index into random_ids of a random replacement.


def draw(rng: np.random.Generator, shape: tuple[int, ...], num_random_ids: int) -> Draws:
  """Masking's random numbers for `shape`, from `rng`.

  The same draws whatever the probabilities, so changing a share does not
  reshuffle which positions are chosen.
  """
  return Draws(rng.random(shape), rng.random(shape),
               rng.integers(0, max(num_random_ids, 1), size=shape))


def select_positions(maskable: np.ndarray, counts: np.ndarray, keys: np.ndarray) -> np.ndarray:
  """[B, T] bool: row b's `counts[b]` maskable positions of smallest key.

  With uniform keys that is `counts[b]` positions uniformly without replacement;
  ranking (rather than comparing keys to a threshold) makes the count exact even
  if two keys tie.
  """
  keys = np.where(maskable, keys, np.inf)  # Never chosen before a maskable position.
  order = np.argsort(keys, axis=-1, kind="stable")
  ranks = np.empty_like(order)
  np.put_along_axis(ranks, order, np.arange(maskable.shape[-1])[None, :], axis=-1)
  return ranks < np.asarray(counts)[:, None]


def apply_draws(tokens: np.ndarray, maskable: np.ndarray, draws: Draws, *, mask_id: int,
                random_ids: np.ndarray, mask_probability: float = 0.15,
                mask_token_probability: float = 0.8,
                random_token_probability: float = 0.1) -> dict[str, np.ndarray]:
  """`mask_tokens` with its random numbers given: for a batch whose rows draw apart."""
  tokens = np.asarray(tokens, np.int32)
  maskable = np.asarray(maskable, bool)
  random_ids = np.asarray(random_ids, np.int32).reshape(-1)
  if tokens.ndim != 2 or maskable.shape != tokens.shape:
    raise ValueError(f"tokens and maskable must both be [B, T], got {tokens.shape} and "
                     f"{maskable.shape}")
  if random_token_probability > 0 and random_ids.size == 0:
    raise ValueError("random_ids is empty: there is no token to draw a replacement from")
  counts = selection_counts(maskable.sum(axis=-1), mask_probability)
  selected = select_positions(maskable, counts, draws.keys)
  masked = selected & (draws.actions < mask_token_probability)
  randomized = (selected & ~masked
                & (draws.actions < mask_token_probability + random_token_probability))
  inputs = np.where(masked, np.int32(mask_id), tokens)
  if random_ids.size:
    inputs = np.where(randomized, random_ids[draws.replacements], inputs)
  return {"inputs": inputs.astype(np.int32), "targets": tokens.copy(),
          "weights": selected.astype(np.float32)}


def mask_tokens(tokens: np.ndarray, maskable: np.ndarray, rng: np.random.Generator, *,
                mask_id: int, random_ids: np.ndarray, mask_probability: float = 0.15,
                mask_token_probability: float = 0.8,
                random_token_probability: float = 0.1) -> dict[str, np.ndarray]:
  """The masked-LM example of each row of `tokens`.

  tokens: [B, T] int; maskable: [B, T] bool, False on special tokens and padding.
  random_ids: [V'] the ids a random replacement is drawn from (uniformly): the
  vocabulary without its special tokens. A random replacement may happen to be
  the original token, as in BERT.
  Returns {"inputs": [B, T] int32 the corrupted tokens, "targets": [B, T] int32
  the original tokens, "weights": [B, T] float32, 1.0 exactly at the chosen positions}.
  """
  draws = draw(rng, np.shape(tokens), np.size(random_ids))
  return apply_draws(tokens, maskable, draws, mask_id=mask_id, random_ids=random_ids,
                     mask_probability=mask_probability,
                     mask_token_probability=mask_token_probability,
                     random_token_probability=random_token_probability)
