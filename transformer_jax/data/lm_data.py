"""What a language-model task needs from `data.*`: a tokenizer, batches and held-out text.

Two ways to cut a corpus into rows (`data.packing`):
  stream     the documents form one token stream; the first (1 - validation_fraction)
             trains, the rest validates; a batch is random windows (nanoGPT style).
  documents  documents are split by a hash of their names (so, for code, validation
             modules are unseen), joined with EOS and packed into fixed-length rows
             with segment ids and per-document positions; batches are epochs of
             permuted rows.
Either way a batch is a pure function of (seed, step), so resumes are exact.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

import jax
import numpy as np
from absl import logging

from transformer_jax.configuration import ExperimentConfig
from transformer_jax.data import (corpus, lm_batches, packing, row_batches, sources,
                                  special_tokens)
from transformer_jax.data import tokenizer as tokenizer_lib
from transformer_jax.data.tokenizer import Tokenizer, encode_all
from transformer_jax.errors import DataError

# Causal LM needs an end-of-document token to pack documents and pad to fill rows.
CAUSAL_LM_SPECIAL_TOKENS = (special_tokens.PAD, special_tokens.EOS)


@dataclasses.dataclass
class LmData:
  tokenizer: Tokenizer
  train_batch_at: Callable[[int], dict]  # step -> this process's rows of the batch.
  eval_batches: Callable[[], Iterable[dict]]  # The same batches at every evaluation.
  validation_tokens: np.ndarray  # [N] the held-out text as one stream (sliding windows).


def _stream(cfg: ExperimentConfig, tokenizer: Tokenizer, documents) -> LmData:
  ids = encode_all(tokenizer, [doc.text for doc in documents])
  if len(ids) > 1 and special_tokens.EOS in getattr(tokenizer, "special_tokens", ()):
    eos = np.array([tokenizer.token_id(special_tokens.EOS)], np.int32)
    ids = [part for doc in ids for part in (doc, eos)]
  split = lm_batches.split_stream(np.concatenate(ids), cfg.data.validation_fraction,
                                  cfg.model.max_length)
  t, e, length = cfg.train, cfg.eval, cfg.model.max_length

  def rows(tokens, step, batch_size):
    return lm_batches.batch_at(tokens, t.seed, step, batch_size, length,
                               jax.process_index(), jax.process_count())

  return LmData(
      tokenizer=tokenizer,
      train_batch_at=lambda step: rows(split.train, step, t.batch_size),
      eval_batches=lambda: (rows(split.validation, i, e.batch_size)
                            for i in range(e.num_batches)),
      validation_tokens=split.validation)


def _documents(cfg: ExperimentConfig, tokenizer: Tokenizer, parts) -> LmData:
  t, e, length = cfg.train, cfg.eval, cfg.model.max_length
  eos = tokenizer.token_id(special_tokens.EOS)
  pad = tokenizer.token_id(special_tokens.PAD)

  def pack(documents):
    return packing.pack_documents(encode_all(tokenizer, [doc.text for doc in documents]),
                                  length, eos, pad, overlap=cfg.data.chunk_overlap)

  train_rows, validation_rows = pack(parts["train"]), pack(parts["validation"])
  if len(train_rows["inputs"]) < t.batch_size:
    raise DataError(f"the training split of {cfg.data.path or cfg.data.format} packs into "
                    f"{len(train_rows['inputs'])} rows, fewer than train.batch_size")
  logging.info("packed %d training and %d validation rows of %d tokens",
               len(train_rows["inputs"]), len(validation_rows["inputs"]), length)
  eval_rows = {k: v[:e.num_batches * e.batch_size] for k, v in validation_rows.items()}
  eval_list = row_batches.batches_of_rows(eval_rows, e.batch_size)
  validation_ids = encode_all(tokenizer, [doc.text for doc in parts["validation"]])
  stream = np.concatenate([p for doc in validation_ids
                           for p in (doc, np.array([eos], np.int32))])
  return LmData(
      tokenizer=tokenizer,
      train_batch_at=lambda step: row_batches.rows_batch_at(
          train_rows, t.seed, step, t.batch_size, jax.process_index(), jax.process_count()),
      eval_batches=lambda: iter(eval_list),
      validation_tokens=stream)


def build(cfg: ExperimentConfig, workdir: str) -> LmData:
  """Reads, cleans and tokenizes `data.*` (training a tokenizer unless one exists, see
  `tokenizer.make`)."""
  d = cfg.data
  documents = corpus.texts(d)
  if d.packing == "stream":
    special = () if d.tokenizer == "char" else CAUSAL_LM_SPECIAL_TOKENS
    # A character vocabulary covers the whole corpus, as nanoGPT's does.
    tokenizer = tokenizer_lib.make(cfg, workdir, [doc.text for doc in documents], special)
    return _stream(cfg, tokenizer, documents)
  parts = sources.split_documents(documents, d.validation_fraction, d.test_fraction,
                                  cfg.train.seed)
  texts = [doc.text for doc in (parts["train"] if d.tokenizer != "char" else documents)]
  tokenizer = tokenizer_lib.make(cfg, workdir, texts, CAUSAL_LM_SPECIAL_TOKENS)
  return _documents(cfg, tokenizer, parts)
