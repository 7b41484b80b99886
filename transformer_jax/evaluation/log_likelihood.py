"""Log-likelihoods of text under a decoder-only model, as lm-evaluation-harness defines them.

A request is (context tokens, continuation tokens); its answer is the continuation's
summed log-probability given the context, and whether every continuation token is the
model's greedy choice. Encoding follows the harness's `_encode_pair`: the context's
trailing spaces move to the continuation, the whole text is encoded and split after
the context's tokens, so a byte-level BPE sees the continuation's leading space as it
would in running text. An empty context becomes the end-of-text token (the prefix
token) where the tokenizer has one; without one, the first token is the context.
A whole document (`rolling_windows`) is cut into disjoint windows of up to
model.max_length predicted tokens, each predicted from the window before it, as the
harness's `loglikelihood_rolling` does. A request longer than the context keeps its last
model.max_length + 1 tokens.

`Scorer` runs requests in padded batches of a few length buckets (powers of two up to
the context), longest first, through one compiled function per bucket, kept across calls.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, ContextManager, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

MIN_BUCKET = 16


@dataclasses.dataclass(frozen=True)
class Request:
  context: tuple[int, ...]  # At least one token (the prefix token for an empty context).
  continuation: tuple[int, ...]  # The tokens scored.


@dataclasses.dataclass(frozen=True)
class Result:
  log_prob: float  # Summed over the continuation's tokens.
  is_greedy: bool  # Every continuation token is the argmax of its prediction.
  token_log_probs: np.ndarray  # [N] float32, one per continuation token.
  tokens: np.ndarray  # [N] int32, the continuation's tokens.


def encode_pair(encode: Callable[[str], Sequence[int]], context: str, continuation: str,
                prefix_token: Optional[int]) -> Request:
  """The harness's encoding of (context, continuation) (see the module docstring)."""
  spaces = len(context) - len(context.rstrip())
  if spaces:
    context, continuation = context[:-spaces], context[-spaces:] + continuation
  if not context:
    return document_request(list(encode(continuation)), prefix_token)
  whole = list(encode(context + continuation))
  context_ids = list(encode(context))
  return Request(tuple(whole[:len(context_ids)]), tuple(whole[len(context_ids):]))


def document_request(tokens: Sequence[int], prefix_token: Optional[int]) -> Request:
  """A text scored from its first token: after the prefix token, or given its first token
  when there is none."""
  tokens = [int(t) for t in tokens]
  if prefix_token is not None:
    return Request((prefix_token,), tuple(tokens))
  return Request(tuple(tokens[:1]), tuple(tokens[1:]))


def rolling_windows(tokens: Sequence[int], prefix_token: Optional[int],
                    max_length: int) -> list[Request]:
  """A document as disjoint windows, every token predicted once: the harness's
  get_rolling_token_windows(context_len=1) made disjoint. The first window predicts up to
  max_length tokens after the prefix token (without one, after the first token); each
  later one the next max_length tokens, after the token before them (the last window,
  shorter, after as many as fit)."""
  tokens = [int(t) for t in tokens]
  if prefix_token is None:
    if not tokens:
      return []
    prefix_token, tokens = tokens[0], tokens[1:]
  if not tokens:
    return []
  first = min(max_length, len(tokens))
  windows = [Request((prefix_token,), tuple(tokens[:first]))]
  predicted = first
  while predicted < len(tokens):
    count = min(len(tokens) - predicted, max_length)
    end = predicted + count
    context = tokens[end - max_length - 1:end - 1]
    windows.append(Request(tuple(context[:len(context) - (count - 1)]),
                           tuple(tokens[end - count:end])))
    predicted = end
  return windows


def _row(request: Request, max_length: int) -> tuple[list[int], list[int], int]:
  """(inputs, targets, number of scored positions at the end) of one request."""
  whole = list(request.context) + list(request.continuation)
  whole = whole[-(max_length + 1):]
  return whole[:-1], whole[1:], min(len(request.continuation), len(whole) - 1)


def _bucket(length: int, max_length: int) -> int:
  size = MIN_BUCKET
  while size < length:
    size *= 2
  return min(size, max_length)


class Scorer:
  """Scores requests with apply_logits(params, tokens [B, T]) -> logits [B, T, V]."""

  def __init__(self, apply_logits: Callable[[Any, jax.Array], jax.Array], max_length: int,
               batch_size: int, pad_token: int = 0,
               context: Callable[[], ContextManager] = contextlib.nullcontext):
    self.max_length, self.batch_size, self.pad_token = max_length, batch_size, pad_token
    self.context = context

    def log_probs(params, inputs, targets):
      logits = apply_logits(params, inputs).astype(jnp.float32)
      chosen = jnp.take_along_axis(jax.nn.log_softmax(logits), targets[..., None], axis=-1)
      return chosen[..., 0], jnp.argmax(logits, axis=-1) == targets

    self._run = jax.jit(log_probs)  # One compilation per bucket, kept by jit.

  def score(self, params, requests: Sequence[Request]) -> list[Result]:
    rows = [_row(request, self.max_length) for request in requests]
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))
    results: list[Optional[Result]] = [None] * len(rows)
    for start in range(0, len(order), self.batch_size):
      members = order[start:start + self.batch_size]
      length = _bucket(max(len(rows[i][0]) for i in members), self.max_length)
      inputs = np.full((self.batch_size, length), self.pad_token, np.int32)
      targets = np.full((self.batch_size, length), self.pad_token, np.int32)
      for slot, i in enumerate(members):
        row_inputs, row_targets, _ = rows[i]
        inputs[slot, :len(row_inputs)], targets[slot, :len(row_targets)] = row_inputs, row_targets
      with self.context():
        log_probs, greedy = self._run(params, jnp.asarray(inputs), jnp.asarray(targets))
      log_probs, greedy = np.asarray(log_probs), np.asarray(greedy)
      for slot, i in enumerate(members):
        row_inputs, row_targets, scored = rows[i]
        end = len(row_inputs)
        token_log_probs = log_probs[slot, end - scored:end]
        results[i] = Result(log_prob=float(np.sum(token_log_probs, dtype=np.float64)),
                            is_greedy=bool(np.all(greedy[slot, end - scored:end])),
                            token_log_probs=token_log_probs.astype(np.float32),
                            tokens=np.asarray(row_targets[end - scored:end], np.int32))
    return results
