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
import hashlib
import os
from typing import Callable, Iterable, Sequence, Union

import jax
import numpy as np
from absl import logging

from transformer_jax.configuration import DataConfig, ExperimentConfig
from transformer_jax.data import (cleaning, lm_batches, packing, row_batches, sources,
                                  special_tokens)
from transformer_jax.data.bpe_tokenizer import BpeTokenizer
from transformer_jax.data.char_tokenizer import CharTokenizer
from transformer_jax.errors import DataError

Tokenizer = Union[CharTokenizer, BpeTokenizer]
# Causal LM needs an end-of-document token to pack documents and pad to fill rows.
CAUSAL_LM_SPECIAL_TOKENS = (special_tokens.PAD, special_tokens.EOS)


@dataclasses.dataclass
class LmData:
  tokenizer: Tokenizer
  train_batch_at: Callable[[int], dict]  # step -> this process's rows of the batch.
  eval_batches: Callable[[], Iterable[dict]]  # The same batches at every evaluation.
  validation_tokens: np.ndarray  # [N] the held-out text as one stream (sliding windows).


def tokenizer_path(workdir: str, kind: str) -> str:
  name = "vocabulary.json" if kind == "char" else "tokenizer.json"
  return os.path.join(workdir, name)


def load_tokenizer(kind: str, path: str) -> Tokenizer:
  if not os.path.exists(path):
    raise DataError(f"tokenizer file not found: {path}")
  if kind == "char":
    return CharTokenizer.load_file(path)
  return BpeTokenizer.load(path)


def _kind(tokenizer: Tokenizer) -> str:
  return "char" if isinstance(tokenizer, CharTokenizer) else "bpe"


def save_tokenizer(tokenizer: Tokenizer, workdir: str) -> str:
  if isinstance(tokenizer, CharTokenizer):
    return tokenizer.save(workdir)  # Writes vocabulary.json there.
  return tokenizer.save(tokenizer_path(workdir, "bpe"))


def tokenizer_fingerprint(tokenizer: Tokenizer) -> dict:
  """Checkpoint metadata that tells whether a tokenizer is the one a model was trained with."""
  return {"kind": _kind(tokenizer), "vocab_size": tokenizer.vocab_size,
          "sha256": hashlib.sha256(tokenizer.to_json().encode("utf-8")).hexdigest()}


def read_corpus(d: DataConfig) -> sources.Corpus:
  """`data.*`'s corpus as read (uncleaned); replaced invalid bytes are logged."""
  corpus = sources.read_documents(d.path, d.format, text_field=d.text_field,
                                  target_path=d.target_path, invalid_utf8=d.invalid_utf8)
  if corpus.replaced_bytes:
    logging.warning("replaced %d invalid UTF-8 bytes in %s", corpus.replaced_bytes,
                    d.path or d.format)
  return corpus


def cleaning_rules(d: DataConfig) -> cleaning.CleaningConfig:
  return cleaning.CleaningConfig(d.unicode_normalization, d.remove_control_characters,
                                 d.normalize_whitespace)


def read_texts(d: DataConfig) -> list[sources.Document]:
  """Cleaned documents for a language model (a pair becomes one `source<TAB>target` text)."""
  corpus, rules = read_corpus(d), cleaning_rules(d)
  documents = []
  for document in corpus.documents:
    # A parallel corpus becomes one text per pair for a language model.
    text = document.text if document.target is None else f"{document.text}\t{document.target}"
    documents.append(dataclasses.replace(document, text=cleaning.clean(text, rules)))
  return documents


def make_tokenizer(d: DataConfig, workdir: str, texts: Sequence[str], special: Sequence[str]):
  """The given file, else the workdir's (resume), else one trained on `texts`."""
  if d.tokenizer_path:
    return load_tokenizer(d.tokenizer, d.tokenizer_path)
  saved = tokenizer_path(workdir, d.tokenizer)
  if os.path.exists(saved):
    return load_tokenizer(d.tokenizer, saved)
  if d.tokenizer == "char":
    return CharTokenizer(sorted(set("".join(texts))), special_tokens=special)
  BpeTokenizer.check_vocab_size(d.vocab_size, special)  # One line naming data.vocab_size.
  return BpeTokenizer.train(texts, d.vocab_size, special)


def encode_all(tokenizer: Tokenizer, texts: Sequence[str]) -> list[np.ndarray]:
  if isinstance(tokenizer, BpeTokenizer):
    return tokenizer.encode_batch(list(texts))
  return [tokenizer.encode(text) for text in texts]


def _pad_rows(rows: dict[str, np.ndarray], multiple: int) -> dict[str, np.ndarray]:
  """Adds zero-weight rows so the row count is a multiple of the batch size."""
  missing = -len(rows["inputs"]) % multiple
  return {k: np.concatenate([v, np.zeros((missing,) + v.shape[1:], v.dtype)])
          for k, v in rows.items()}


def batches_of_rows(rows: dict[str, np.ndarray], batch_size: int) -> list[dict]:
  """Consecutive batches of `batch_size` rows (the last padded), this process's share."""
  rows = _pad_rows(rows, batch_size)
  share = batch_size // jax.process_count()
  start = jax.process_index() * share
  return [{k: v[i + start:i + start + share] for k, v in rows.items()}
          for i in range(0, len(rows["inputs"]), batch_size)]


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
  eval_list = batches_of_rows(eval_rows, e.batch_size)
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
  """Reads, cleans and tokenizes `data.*` (training a tokenizer unless one exists)."""
  d = cfg.data
  documents = read_texts(d)
  if d.packing == "stream":
    special = () if d.tokenizer == "char" else CAUSAL_LM_SPECIAL_TOKENS
    # A character vocabulary covers the whole corpus, as nanoGPT's does.
    tokenizer = make_tokenizer(d, workdir, [doc.text for doc in documents], special)
    return _stream(cfg, tokenizer, documents)
  parts = sources.split_documents(documents, d.validation_fraction, d.test_fraction,
                                  cfg.train.seed)
  texts = [doc.text for doc in (parts["train"] if d.tokenizer == "bpe" else documents)]
  tokenizer = make_tokenizer(d, workdir, texts, CAUSAL_LM_SPECIAL_TOKENS)
  return _documents(cfg, tokenizer, parts)
