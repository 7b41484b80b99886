"""BERT pretraining examples: two segments, whether B follows A, and masked tokens.

A document is cut into passages at blank lines, and a passage's sentences are its
lines: for Tiny Shakespeare a passage is one speech, its first sentence the
speaker's name. Next-sentence prediction then asks whether segment B continues
segment A within a speech or comes from another one.

An example is built like this (all draws from one generator, so it is a pure
function of its seed):
  is_next   drawn first, with probability `next_sentence_probability`.
  A         a passage drawn uniformly among those with at least two sentences, a
            start sentence drawn uniformly among all but its last, and a token
            budget drawn uniformly in [1, max_tokens - 1]; A takes sentences from
            the start while they fit the budget (at least one), and always leaves
            at least one sentence after it, whatever is_next is, so A's length
            says nothing about is_next.
  B         if is_next, the sentences right after A; else sentences from a random
            sentence of a passage other than A's (with a single passage: a random
            sentence of it other than the one after A, which may lie inside A).
            B takes sentences while they fit what A left of max_tokens (at least
            one) and stops at its passage's end.
  truncate  if the pair is still too long (a sentence longer than its budget),
            the longer segment loses its last token until the pair fits (ties cut
            B, as in BERT's truncate_seq_pair); both keep at least one token. A
            cut A no longer ends where B begins; BERT accepts that too.
A batch's row r of step s uses the generator seeded with (seed, s, r), so the
batch is a pure function of (seed, step) and each process builds only its rows.

Axis legend: B batch, T length.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from transformer_jax.data.batches import masking
from transformer_jax.errors import DataError

Passage = Sequence[np.ndarray]  # Its sentences: [L] int32 token ids each.

_DRAWS_BEFORE_SCAN = 32  # Draws for a passage with two sentences before listing them all.


def passages(text: str) -> list[list[str]]:
  """The passages of a text (cut at blank lines), each the list of its non-blank lines.

  A blank line holds only whitespace. Lines keep their text but not their line
  ending ("\\n" or "\\r\\n").
  """
  result, current = [], []
  for line in text.split("\n"):
    line = line.removesuffix("\r")
    if line.strip():
      current.append(line)
    elif current:
      result.append(current)
      current = []
  if current:
    result.append(current)
  return result


def truncated_lengths(a_length: int, b_length: int, max_tokens: int) -> tuple[int, int]:
  """Lengths after cutting the longer segment's last token (ties: B's) until both fit.

  The closed form of that loop: a segment no longer than its half of max_tokens
  (A's half rounds up) is never cut, and the other gets the rest.
  """
  if a_length + b_length <= max_tokens:
    return a_length, b_length
  a_half, b_half = (max_tokens + 1) // 2, max_tokens // 2
  if a_length <= a_half:
    return a_length, max_tokens - a_length
  if b_length <= b_half:
    return max_tokens - b_length, b_length
  return a_half, b_half


def _first_passage(passages_tokens: Sequence[Passage], rng: np.random.Generator) -> int:
  """A passage with at least two sentences, uniformly: by rejection, else from the list."""
  for _ in range(_DRAWS_BEFORE_SCAN):
    index = int(rng.integers(len(passages_tokens)))
    if len(passages_tokens[index]) >= 2:
      return index
  # Rare passages with two sentences: draw from their list (still uniform among them).
  candidates = [i for i, passage in enumerate(passages_tokens) if len(passage) >= 2]
  if not candidates:
    raise DataError("no passage has two sentences to make a sentence pair from")
  return candidates[int(rng.integers(len(candidates)))]


def _take(passage: Passage, start: int, stop: int, budget: int) -> int:
  """End (exclusive) of sentences from `start` (at least one, before `stop`) within `budget`."""
  end, used = start + 1, len(passage[start])
  while end < stop and used + len(passage[end]) <= budget:
    used += len(passage[end])
    end += 1
  return end


def pair_example(passages_tokens: Sequence[Passage], rng: np.random.Generator,
                 max_tokens: int, next_sentence_probability: float
                 ) -> tuple[np.ndarray, np.ndarray, int]:
  """(a, b, is_next): segments of at most `max_tokens` tokens together (see the module doc).

  passages_tokens: passages, each a non-empty list of non-empty [L] int32 sentences;
  at least one passage needs two sentences. a, b: [La], [Lb] int32, both non-empty.
  """
  if max_tokens < 2:
    raise ValueError(f"max_tokens must be at least 2 (one token per segment), got {max_tokens}")
  is_next = int(rng.random() < next_sentence_probability)
  first = _first_passage(passages_tokens, rng)
  passage = passages_tokens[first]
  a_start = int(rng.integers(len(passage) - 1))
  a_budget = int(rng.integers(1, max_tokens))
  a_end = _take(passage, a_start, len(passage) - 1, a_budget)
  a = np.concatenate(passage[a_start:a_end])
  if is_next:
    second, b_start = passage, a_end
  elif len(passages_tokens) > 1:
    other = int(rng.integers(len(passages_tokens) - 1))
    second = passages_tokens[other + (other >= first)]
    b_start = int(rng.integers(len(second)))
  else:
    b_start = int(rng.integers(len(passage) - 1))
    second, b_start = passage, b_start + (b_start >= a_end)
  b_end = _take(second, b_start, len(second), max_tokens - len(a))
  b = np.concatenate(second[b_start:b_end])
  a_length, b_length = truncated_lengths(len(a), len(b), max_tokens)
  return (np.asarray(a[:a_length], np.int32), np.asarray(b[:b_length], np.int32), is_next)


def encode_pair(a: np.ndarray, b: np.ndarray, length: int, cls_id: int, sep_id: int,
                pad_id: int) -> dict[str, np.ndarray]:
  """One row [T]: [CLS] a [SEP] b [SEP] then padding.

  Returns {"inputs": [T] int32, "token_types": [T] int32 (0 on [CLS], A and the first
  [SEP], 1 on B and the second [SEP], 0 on padding), "segment_ids": [T] int32 (1 on
  real tokens, 0 on padding: the padding mask), "maskable": [T] bool (a's and b's tokens)}.
  """
  used = len(a) + len(b) + 3
  if used > length:
    raise ValueError(f"a pair of {len(a)} + {len(b)} tokens does not fit {length} positions")
  inputs = np.full(length, pad_id, np.int32)
  inputs[:used] = np.concatenate([[cls_id], a, [sep_id], b, [sep_id]])
  token_types = np.zeros(length, np.int32)
  token_types[len(a) + 2:used] = 1
  segment_ids = np.zeros(length, np.int32)
  segment_ids[:used] = 1
  maskable = np.zeros(length, bool)
  maskable[1:len(a) + 1] = True
  maskable[len(a) + 2:used - 1] = True
  return {"inputs": inputs, "token_types": token_types, "segment_ids": segment_ids,
          "maskable": maskable}


def batch_at(passages_tokens: Sequence[Passage], seed: int, step: int, batch_size: int,
             length: int, *, cls_id: int, sep_id: int, pad_id: int, mask_id: int,
             random_ids: np.ndarray, mask_probability: float, mask_token_probability: float,
             random_token_probability: float, next_sentence_probability: float,
             process_index: int = 0, process_count: int = 1) -> dict[str, np.ndarray]:
  """This process's rows of the global batch of `step`: rows p·B/P ... (p+1)·B/P - 1.

  Row r draws everything (the pair, then its masking) from the generator seeded
  with (seed, step, r). Returns {"inputs": [B/P, T] int32 (masked), "targets":
  [B/P, T] int32, "weights": [B/P, T] float32, "token_types": [B/P, T] int32,
  "segment_ids": [B/P, T] int32, "is_next": [B/P] int32}.
  """
  if batch_size % process_count:
    raise ValueError(f"batch size {batch_size} does not split over {process_count} processes")
  share = batch_size // process_count
  rows, draws = [], []
  for row in range(process_index * share, (process_index + 1) * share):
    rng = np.random.default_rng([seed, step, row])
    a, b, is_next = pair_example(passages_tokens, rng, length - 3, next_sentence_probability)
    rows.append(dict(encode_pair(a, b, length, cls_id, sep_id, pad_id), is_next=is_next))
    draws.append(masking.draw(rng, (length,), len(random_ids)))
  stacked = {name: np.stack([row[name] for row in rows]) for name in rows[0]}
  batch = masking.apply_draws(
      stacked["inputs"], stacked["maskable"], masking.Draws(*map(np.stack, zip(*draws))),
      mask_id=mask_id, random_ids=random_ids, mask_probability=mask_probability,
      mask_token_probability=mask_token_probability,
      random_token_probability=random_token_probability)
  batch.update(token_types=stacked["token_types"], segment_ids=stacked["segment_ids"],
               is_next=stacked["is_next"].astype(np.int32))
  return batch
