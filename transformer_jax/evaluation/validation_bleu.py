"""BLEU of decoded outputs: a held-out split's, and validation pairs' at every evaluation.

seq2seq translates and sft completes; both score what they decode against the
references the same way (`corpus_bleu`, one line per output) and, with
eval.bleu_pairs > 0, add `eval_validation_bleu` of that many validation pairs,
evenly spaced over the split, to every evaluation (`metric`).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional, Sequence, TypeVar

from absl import logging

from transformer_jax.evaluation.bleu import corpus_bleu

VALIDATION_BLEU = "eval_validation_bleu"
T = TypeVar("T")
# decode(params, sources) -> one output text per source.
Decode = Callable[[Any, list[str]], list[str]]


def evenly_spaced(items: Sequence[T], count: int) -> list[T]:
  """At most `count` items spread over the whole list (its order is the split's, so a
  prefix could favour one part of the corpus), first and last included."""
  if count >= len(items):
    return list(items)
  if count == 1:
    return [items[0]]
  return [items[i * (len(items) - 1) // (count - 1)] for i in range(count)]


def decoded_bleu(decode: Decode, params,
                 pairs: Sequence[tuple[str, str]]) -> tuple[float, list[str]]:
  """(BLEU, the outputs, one line each) of decoding each pair's source."""
  outputs = [" ".join(text.splitlines()) for text in decode(params, [s for s, _ in pairs])]
  return corpus_bleu(outputs, [target for _, target in pairs]), outputs


def metric(validation_pairs: Sequence[tuple[str, str]], count: int, decode: Decode,
           how: str) -> Optional[Callable[[Any], dict[str, float]]]:
  """params -> {eval_validation_bleu} of `count` validation pairs decoded by `decode` (one
  compiled decoder for every evaluation); None when count is 0. how: for the log line."""
  pairs = evenly_spaced(validation_pairs, count)
  if not pairs:
    return None

  def more_metrics(params) -> dict[str, float]:
    start = time.time()
    score, outputs = decoded_bleu(decode, params, pairs)
    logging.info("validation BLEU %.2f on %d pairs (%s) in %.1f s; e.g. %r -> %r "
                 "(reference %r)", score, len(pairs), how, time.time() - start, pairs[0][0],
                 outputs[0], pairs[0][1])
    return {VALIDATION_BLEU: score}

  return more_metrics
