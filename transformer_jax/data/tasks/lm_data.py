"""What a language-model task needs from `data.*`: a tokenizer, batches and held-out text.

Two ways to cut a corpus into rows (`data.packing`):
  stream     the documents form one token stream; the first (1 - validation_fraction)
             trains, the rest validates; a batch is random windows (nanoGPT style).
  documents  documents are split by a hash of their names (so, for code, validation
             modules are unseen), joined with EOS and packed into fixed-length rows
             with segment ids and per-document positions; batches are epochs of
             permuted rows.
Either way a batch is a pure function of (seed, step), so resumes are exact.

A named text dataset (`data.dataset`, e.g. wikitext-2) brings its own files: train
trains (and, for BPE, trains the tokenizer), validation validates, test is held out
for `--mode=eval`. Each split is encoded line by line (a line's "\n" is its <eos>), and
the validation and test streams start with EOS, so that every token of their text is
a scored target (see `scored_stream`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Optional

import jax
import numpy as np
from absl import logging

from transformer_jax.config_sections import DataConfig, ExperimentConfig
from transformer_jax.data.corpora import catalog, corpus, sources, wikitext
from transformer_jax.data.batches import lm_batches, packing, row_batches
from transformer_jax.data.tasks import translation_data
from transformer_jax.data.tokenizers import special_tokens
from transformer_jax.data.tokenizers import tokenizer as tokenizer_lib
from transformer_jax.data.tokenizers.tokenizer import Tokenizer, encode_all
from transformer_jax.errors import DataError

# Causal LM needs an end-of-document token to pack documents and pad to fill rows.
CAUSAL_LM_SPECIAL_TOKENS = (special_tokens.PAD, special_tokens.EOS)


@dataclasses.dataclass
class LmData:
  tokenizer: Tokenizer
  train_batch_at: Callable[[int], dict]  # step -> this process's rows of the batch.
  eval_batches: Callable[[], Iterable[dict]]  # The same batches at every evaluation.
  validation_tokens: np.ndarray  # [N] the held-out text as one stream (sliding windows).
  # Named datasets (data.dataset) only: the test text as one stream, like validation_tokens.
  test_tokens: Optional[np.ndarray] = None
  # Named datasets that report word-level perplexity: {"validation": words, "test": words},
  # each counting one <eos> per line (see data/wikitext.py).
  word_counts: Optional[dict[str, int]] = None


def _joined(tokenizer: Tokenizer, documents) -> np.ndarray:
  """[N] int32: the documents encoded, each followed by EOS where the tokenizer has one
  (and more than one document is joined)."""
  ids = encode_all(tokenizer, [doc.text for doc in documents])
  if len(ids) > 1 and special_tokens.EOS in getattr(tokenizer, "special_tokens", ()):
    eos = np.array([tokenizer.token_id(special_tokens.EOS)], np.int32)
    ids = [part for doc in ids for part in (doc, eos)]
  return np.concatenate(ids) if ids else np.zeros(0, np.int32)


def _stream(cfg: ExperimentConfig, tokenizer: Tokenizer, documents, held_out) -> LmData:
  """held_out: {validation, test: documents} of data.validation_path / data.test_path
  (empty when not given: the validation stream is then the tail of data.path's)."""
  tokens, length = _joined(tokenizer, documents), cfg.model.max_length
  if held_out["validation"]:
    split = lm_batches.Split(tokens, _joined(tokenizer, held_out["validation"]))
    for name, part in split._asdict().items():
      if len(part) < length + 1:
        raise DataError(f"the {name} text has {len(part)} tokens, fewer than "
                        f"model.max_length + 1 = {length + 1}")
  else:
    split = lm_batches.split_stream(tokens, cfg.data.validation_fraction, length)
  data = _stream_batches(cfg, tokenizer, split)
  if held_out["test"]:
    data = dataclasses.replace(data, test_tokens=_joined(tokenizer, held_out["test"]))
  return data


def _stream_batches(cfg: ExperimentConfig, tokenizer: Tokenizer,
                    split: lm_batches.Split) -> LmData:
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


def build(cfg: ExperimentConfig, existing: Optional[tokenizer_lib.Existing]) -> LmData:
  """Reads, cleans and tokenizes `data.*` (training a tokenizer unless one exists, see
  `tokenizer.make`); data.validation_path and data.test_path replace their splits."""
  d = cfg.data
  if d.dataset:
    return _named_dataset(cfg, existing)
  if d.pair_documents == "sides":  # Packed documents only (experiment_rules).
    return _packed(cfg, existing, pair_sides(d, cfg.train.seed))
  documents = corpus.texts(d)
  read = lambda path: corpus.texts(dataclasses.replace(d, path=path))
  if d.packing == "stream":
    held_out = {"validation": read(d.validation_path) if d.validation_path else [],
                "test": read(d.test_path) if d.test_path else []}
    special = () if d.tokenizer == "char" else CAUSAL_LM_SPECIAL_TOKENS
    # A character vocabulary covers the whole corpus, as nanoGPT's does; BPE learns from
    # data.path alone.
    vocabulary = documents + (held_out["validation"] + held_out["test"]
                              if d.tokenizer == "char" else [])
    tokenizer = tokenizer_lib.make(cfg.data, existing, [doc.text for doc in vocabulary],
                                   special)
    return _stream(cfg, tokenizer, documents, held_out)
  return _packed(cfg, existing, sources.with_split_files(
      d, documents, read,
      lambda items, validation, test: sources.split_documents(items, validation, test,
                                                              cfg.train.seed)))


def _packed(cfg: ExperimentConfig, existing: Optional[tokenizer_lib.Existing],
            parts: dict[str, list[sources.Document]]) -> LmData:
  """Packed documents of {train, validation, test}: the tokenizer (BPE from training
  documents, char from all), rows, and the test split as one stream."""
  texts = [doc.text for doc in (parts["train"] if cfg.data.tokenizer != "char"
                                else [doc for part in parts.values() for doc in part])]
  tokenizer = tokenizer_lib.make(cfg.data, existing, texts, CAUSAL_LM_SPECIAL_TOKENS)
  data = _documents(cfg, tokenizer, parts)
  if parts["test"]:
    data = dataclasses.replace(data, test_tokens=_joined(tokenizer, parts["test"]))
  return data


def pair_sides(d: DataConfig, seed: int) -> dict[str, list[sources.Document]]:
  """{train, validation, test: documents} of a parallel corpus for a language model: the
  pairs split by source text exactly as seq2seq and sft split them (same fractions and
  seed), then every distinct side of a split's pairs is one document, in an order drawn
  from the seed, so that packing does not put a sentence next to its translation: the
  model learns each language, not the pairing. A base pretrained on the training
  documents has read no sentence of a held-out pair unless a training pair holds it too."""
  parts = translation_data.read_splits(d, seed, "clm")
  sides = {}
  for split, pairs in parts.items():
    texts = list(dict.fromkeys(side for pair in pairs for side in (pair.text, pair.target)))
    order = np.random.default_rng(seed).permutation(len(texts))
    sides[split] = [sources.Document(texts[i], f"{split}:{i}") for i in order]
  logging.info("pair sides as documents: %s", ", ".join(
      f"{len(sides[s])} {s} ({len(parts[s])} pairs)" for s in sources.SPLITS))
  return sides


def encode_lines(tokenizer: Tokenizer, text: str) -> np.ndarray:
  """[N] int32: the text encoded line by line, each line with its "\\n", concatenated
  (BPE encodes the lines in parallel)."""
  ids = encode_all(tokenizer, wikitext.lines(text))
  return np.concatenate(ids) if ids else np.zeros(0, np.int32)


def scored_stream(tokenizer: Tokenizer, text: str) -> np.ndarray:
  """[N] int32: EOS (when the tokenizer has one), then `encode_lines(text)`. Sliding
  windows score every token but the first, so with EOS in front every token of the
  text is scored, as word-level perplexity needs (without, all but the first)."""
  ids = encode_lines(tokenizer, text)
  if special_tokens.EOS not in getattr(tokenizer, "special_tokens", ()):
    return ids
  return np.concatenate([np.array([tokenizer.token_id(special_tokens.EOS)], np.int32), ids])


def _named_dataset(cfg: ExperimentConfig,
                   existing: Optional[tokenizer_lib.Existing]) -> LmData:
  """data.dataset's own splits: train trains, validation validates, test is held out."""
  d, length = cfg.data, cfg.model.max_length
  parts = corpus.dataset_splits(d)
  texts = {split: "".join(doc.text for doc in parts[split]) for split in sources.SPLITS}
  # A character vocabulary covers every split; BPE learns from training text only.
  vocabulary_texts = [texts["train"]] if d.tokenizer != "char" else list(texts.values())
  if d.packing == "stream":
    special = () if d.tokenizer == "char" else CAUSAL_LM_SPECIAL_TOKENS
    tokenizer = tokenizer_lib.make(cfg.data, existing, vocabulary_texts, special)
    split = lm_batches.Split(encode_lines(tokenizer, texts["train"]),
                             scored_stream(tokenizer, texts["validation"]))
    for name, tokens in split._asdict().items():
      if len(tokens) < length + 1:
        raise DataError(f"the {name} split of {d.dataset} has {len(tokens)} tokens, fewer "
                        f"than model.max_length + 1 = {length + 1}")
    logging.info("%s: %d training and %d validation tokens", d.dataset, len(split.train),
                 len(split.validation))
    data = _stream_batches(cfg, tokenizer, split)
  else:
    tokenizer = tokenizer_lib.make(cfg.data, existing, vocabulary_texts, CAUSAL_LM_SPECIAL_TOKENS)
    data = dataclasses.replace(_documents(cfg, tokenizer, parts),
                               validation_tokens=scored_stream(tokenizer, texts["validation"]))
  words = ({split: wikitext.word_count(texts[split]) for split in ("validation", "test")}
           if catalog.CATALOG[d.dataset].word_perplexity else None)
  return dataclasses.replace(data, test_tokens=scored_stream(tokenizer, texts["test"]),
                             word_counts=words)
