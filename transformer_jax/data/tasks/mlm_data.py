"""What BERT pretraining needs from `data.*`: a tokenizer and sentence-pair batches.

Documents are cut into passages at blank lines (`sentence_pairs.passages`), and the
passages, not the documents, are split into train/validation/test by a hash of
their names (`document#index`): one corpus file is one document, and splitting
passages is what gives it held-out text. A passage's sentences are its lines, each
encoded with its line break, so segments read as the text does ("Citizen:\\nBefore",
not "Citizen:Before").

A named text dataset (`data.dataset=wikitext-2`) keeps its own train/validation/test
files; its passages are paragraphs and its sentences are cut at " . " boundaries
(`wikitext.paragraphs`, `wikitext.sentences`), each encoded as the text reads, without
an added line break.

Training batches are a pure function of (train.seed, step), so resumes are exact;
evaluation batches are built once, from the validation passages with the seed
train.seed + 1, so every evaluation scores the same examples.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Iterable, Optional, Sequence

import jax
import numpy as np
from absl import logging

from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data.corpora import corpus, sources, wikitext
from transformer_jax.data.batches import sentence_pairs
from transformer_jax.data.tokenizers import special_tokens
from transformer_jax.data.tokenizers import tokenizer as tokenizer_lib
from transformer_jax.data.tokenizers.tokenizer import Tokenizer
from transformer_jax.errors import DataError

MLM_SPECIAL_TOKENS = (special_tokens.PAD, special_tokens.UNK, special_tokens.CLS,
                      special_tokens.SEP, special_tokens.MASK)
MIN_LENGTH = 5  # [CLS] a [SEP] b [SEP] with one token in each segment.


@dataclasses.dataclass
class MlmData:
  tokenizer: Tokenizer
  train_batch_at: Callable[[int], dict]  # step -> this process's rows of the batch.
  eval_batches: Callable[[], Iterable[dict]]  # The same batches at every evaluation.
  # The test split's batches (--mode=eval's test_* metrics), when it has passages.
  test_batches: Optional[Callable[[], Iterable[dict]]] = None


def passage_documents(documents: Sequence[sources.Document]) -> list[sources.Document]:
  """One Document per passage, named `document#index`; its text is its lines, each + "\\n"."""
  return [sources.Document("".join(line + "\n" for line in lines), f"{document.name}#{index}")
          for document in documents
          for index, lines in enumerate(sentence_pairs.passages(document.text))]


def _sentences(passage: sources.Document) -> list[str]:
  return [line + "\n" for line in passage.text.split("\n")[:-1]]


def encode_passages(tokenizer: Tokenizer,
                    passages: Sequence[sources.Document]) -> list[list[np.ndarray]]:
  """Each passage's sentences as [L] int32 ids; empty sentences and passages dropped."""
  return encode_sentences(tokenizer, [_sentences(passage) for passage in passages])


def encode_sentences(tokenizer: Tokenizer,
                     sentences: Sequence[Sequence[str]]) -> list[list[np.ndarray]]:
  """Each passage (its sentences' texts) as [L] int32 ids a sentence; empty sentences and
  passages dropped."""
  ids = tokenizer_lib.encode_all(tokenizer, [text for texts in sentences for text in texts])
  encoded, start = [], 0
  for texts in sentences:
    kept = [sentence for sentence in ids[start:start + len(texts)] if len(sentence)]
    start += len(texts)
    if kept:
      encoded.append(kept)
  return encoded


def random_ids(tokenizer: Tokenizer) -> np.ndarray:
  """[V'] int32 every id but the tokenizer's special tokens: what a random replacement draws."""
  special = {tokenizer.token_id(token) for token in tokenizer.special_tokens}
  return np.array([i for i in range(tokenizer.vocab_size) if i not in special], np.int32)


def _summarize(split: str, passages: Sequence[Sequence[np.ndarray]], where: str) -> None:
  pairable = sum(len(passage) >= 2 for passage in passages)
  logging.info("%s split: %d passages (%d with two or more sentences), %d sentences, "
               "%d tokens", split, len(passages), pairable,
               sum(len(passage) for passage in passages),
               sum(len(sentence) for passage in passages for sentence in passage))
  if split in ("train", "validation") and not pairable:
    raise DataError(f"the {split} split of {where} has no passage of two or more lines to "
                    "make a sentence pair from (passages are separated by blank lines)")


def _file_sentences(d, seed: int) -> dict[str, list[list[str]]]:
  """data.path's passages (blank-line separated) split by a hash of their names (or
  data.validation_path's and data.test_path's passages); each passage as its sentences
  (lines, each with its line break)."""
  read = lambda path: passage_documents(corpus.texts(dataclasses.replace(d, path=path)))
  parts = sources.with_split_files(
      d, read(d.path), read,
      lambda items, validation, test: sources.split_documents(items, validation, test, seed))
  return {split: [_sentences(passage) for passage in parts[split]] for split in sources.SPLITS}


def _dataset_sentences(d) -> dict[str, list[list[str]]]:
  """A named text dataset's own splits: passages are paragraphs, sentences cut at " . "."""
  parts = corpus.dataset_splits(d)
  return {split: [wikitext.sentences(paragraph) for document in parts[split]
                  for paragraph in wikitext.paragraphs(document.text)]
          for split in sources.SPLITS}


def build(cfg: ExperimentConfig, existing: Optional[tokenizer_lib.Existing]) -> MlmData:
  """Reads, cleans and tokenizes `data.*` (training a tokenizer unless one exists)."""
  d, t, e, length = cfg.data, cfg.train, cfg.eval, cfg.model.max_length
  if length < MIN_LENGTH:
    raise DataError(f"model.max_length={length} is too short for [CLS] a [SEP] b [SEP]: "
                    f"masked-LM rows need at least {MIN_LENGTH} positions")
  where = d.dataset or d.path or d.format
  sentences = _dataset_sentences(d) if d.dataset else _file_sentences(d, t.seed)
  # A character vocabulary covers every passage; BPE learns from training text only.
  texts = ["".join(passage) for split in sources.SPLITS for passage in sentences[split]
           if split == "train" or d.tokenizer == "char"]
  tokenizer = tokenizer_lib.make(cfg.data, existing, texts, MLM_SPECIAL_TOKENS)
  encoded = {}
  for split in sources.SPLITS:
    encoded[split] = encode_sentences(tokenizer, sentences[split])
    _summarize(split, encoded[split], where)
  batch_at = functools.partial(
      sentence_pairs.batch_at, length=length,
      cls_id=tokenizer.token_id(special_tokens.CLS),
      sep_id=tokenizer.token_id(special_tokens.SEP),
      pad_id=tokenizer.token_id(special_tokens.PAD),
      mask_id=tokenizer.token_id(special_tokens.MASK), random_ids=random_ids(tokenizer),
      mask_probability=d.mask_probability, mask_token_probability=d.mask_token_probability,
      random_token_probability=d.random_token_probability,
      next_sentence_probability=d.next_sentence_probability,
      process_index=jax.process_index(), process_count=jax.process_count())
  eval_list = [batch_at(encoded["validation"], t.seed + 1, index, e.batch_size)
               for index in range(e.num_batches)]
  test_list = [batch_at(encoded["test"], t.seed + 2, index, e.batch_size)
               for index in range(e.num_batches)] if encoded["test"] else None
  return MlmData(
      tokenizer=tokenizer,
      train_batch_at=lambda step: batch_at(encoded["train"], t.seed, step, t.batch_size),
      eval_batches=lambda: iter(eval_list),
      test_batches=(lambda: iter(test_list)) if test_list else None)
