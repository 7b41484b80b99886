"""What sequence classification needs from labelled text: a tokenizer, label ids, rows.

A row is one text: for an encoder body `<cls> text <sep>` (BERT's layout), for a
decoder body `text <eos>` (the classifier reads the last real token), padded, with
segment ids 1 on real tokens. Rows are as long as the longest example needs (rounded
up to a multiple of 8), at most `length` tokens (model.max_length, less a soft
prompt's slots), where longer texts are cut. The labels are the training split's, in sorted order, saved in
the workdir (`labels.json`) so that evaluation and prediction read the same ids; a
held-out label the training data never had is one line. `data.train_examples` keeps a
stratified subset of the training split (`stratified_subsets.py`), before the tokenizer
and the labels see it. Training batches are a pure function of (train.seed, step), as for
every task.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Iterable, Optional, Sequence

import jax
import numpy as np
from absl import logging

from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data.batches import row_batches
from transformer_jax.data.tasks import stratified_subsets
from transformer_jax.data.tokenizers import special_tokens
from transformer_jax.data.tokenizers import tokenizer as tokenizer_lib
from transformer_jax.data.corpora.text_files import write_text
from transformer_jax.data.tokenizers.tokenizer import Tokenizer
from transformer_jax.errors import DataError

LABELS_FILE = "labels.json"
ENCODER_SPECIAL_TOKENS = (special_tokens.PAD, special_tokens.UNK, special_tokens.CLS,
                          special_tokens.SEP, special_tokens.MASK)
DECODER_SPECIAL_TOKENS = (special_tokens.PAD, special_tokens.EOS)
Splits = dict[str, list[tuple[str, str]]]  # split -> (text, label) pairs.


@dataclasses.dataclass
class ClassificationData:
  tokenizer: Tokenizer
  labels: tuple[str, ...]  # Label i is class i.
  train_batch_at: Callable[[int], dict]
  eval_batches: Callable[[], Iterable[dict]]  # The validation split.
  test_batches: Callable[[], Iterable[dict]]


def read_labels(directory: str) -> Optional[tuple[str, ...]]:
  """The labels a workdir (or an exported one) holds, or None."""
  path = os.path.join(directory, LABELS_FILE)
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as f:
    return tuple(json.load(f))


def save_labels(labels: Sequence[str], directory: str) -> str:
  return write_text(os.path.join(directory, LABELS_FILE),
                    json.dumps(list(labels), ensure_ascii=False), "labels")


def rows(tokenizer: Tokenizer, texts: Sequence[str], length: int, encoder: bool) -> dict:
  """{'inputs', 'segment_ids'} [N, length] int32 for `texts` (see the module docstring)."""
  pad = tokenizer.token_id(special_tokens.PAD)
  if encoder:
    first, last = [tokenizer.token_id(special_tokens.CLS)], [tokenizer.token_id(special_tokens.SEP)]
  else:
    first, last = [], [tokenizer.token_id(special_tokens.EOS)]
  room = length - len(first) - len(last)
  if room < 1:
    raise DataError(f"rows of {length} tokens leave no room for text")
  inputs = np.full((len(texts), length), pad, np.int32)
  segments = np.zeros((len(texts), length), np.int32)
  for i, ids in enumerate(tokenizer_lib.encode_all(tokenizer, list(texts))):
    tokens = first + list(ids[:room]) + last
    inputs[i, :len(tokens)], segments[i, :len(tokens)] = tokens, 1
  return {"inputs": inputs, "segment_ids": segments}


def label_ids(pairs: Sequence[tuple[str, str]], labels: Sequence[str], split: str) -> np.ndarray:
  index = {label: i for i, label in enumerate(labels)}
  unknown = sorted({label for _, label in pairs if label not in index})
  if unknown:
    raise DataError(f"the {split} split has labels the training data never had: "
                    f"{', '.join(map(repr, unknown[:5]))} (known: {', '.join(labels)})")
  return np.asarray([index[label] for _, label in pairs], np.int32)


def labelled_rows(tokenizer: Tokenizer, pairs: Sequence[tuple[str, str]],
                  labels: Sequence[str], length: int, encoder: bool, split: str) -> dict:
  out = rows(tokenizer, [text for text, _ in pairs], length, encoder)
  out["labels"] = label_ids(pairs, labels, split)
  out["weights"] = np.ones(len(pairs), np.float32)
  return out


def build(cfg: ExperimentConfig, existing: Optional[tokenizer_lib.Existing], splits: Splits, *,
          saved_labels: Optional[tuple[str, ...]], encoder: bool,
          length: int) -> ClassificationData:
  """Tokenizer (`existing`: the base's or the workdir's, else trained on the training
  texts), labels (`saved_labels`: the workdir's, else the training split's) and rows of
  `length` tokens."""
  special = ENCODER_SPECIAL_TOKENS if encoder else DECODER_SPECIAL_TOKENS
  splits = dict(splits, train=stratified_subsets.stratified_subset(
      splits["train"], cfg.data.train_examples, cfg.data.subset_seed))
  # A character vocabulary covers every split's text; BPE learns from training text only.
  vocabulary = splits["train"] if cfg.data.tokenizer != "char" else [
      pair for pairs in splits.values() for pair in pairs]
  tokenizer = tokenizer_lib.make(cfg.data, existing, [text for text, _ in vocabulary], special)
  missing = [t for t in special if t not in getattr(tokenizer, "special_tokens", ())]
  if missing:
    raise DataError(f"the tokenizer lacks {', '.join(missing)}, which classification with "
                    f"this body needs")
  labels = saved_labels or tuple(sorted({label for _, label in splits["train"]}))
  if len(labels) < 2:
    raise DataError(f"the training split has {len(labels)} label(s): classification needs 2+")
  t, e = cfg.train, cfg.eval
  longest = max(len(ids) for pairs in splits.values()
                for ids in tokenizer_lib.encode_all(tokenizer, [text for text, _ in pairs]))
  length = min(length, -(-(longest + 2) // 8) * 8)
  made = {split: labelled_rows(tokenizer, pairs, labels, length, encoder, split)
          for split, pairs in splits.items()}
  for split, pairs in splits.items():
    logging.info("%s: %d examples, labels %s", split, len(pairs),
                 {label: int((made[split]["labels"] == i).sum()) for i, label in enumerate(labels)})
  if len(splits["train"]) < t.batch_size:
    raise DataError(f"the training split has {len(splits['train'])} examples, fewer than "
                    f"train.batch_size={t.batch_size}")
  return ClassificationData(
      tokenizer=tokenizer, labels=labels,
      train_batch_at=lambda step: row_batches.rows_batch_at(
          made["train"], t.seed, step, t.batch_size, jax.process_index(), jax.process_count()),
      eval_batches=lambda: iter(row_batches.batches_of_rows(made["validation"], e.batch_size)),
      test_batches=lambda: iter(row_batches.batches_of_rows(made["test"], e.batch_size)))
