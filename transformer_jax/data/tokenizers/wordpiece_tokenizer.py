"""WordPiece tokenizer: BERT's subwords ('##' continues a word), via Hugging Face `tokenizers`.

Loaded from a `tokenizer.json` (a Hugging Face BERT folder's, with its normalizer: BERT
lowercases and strips accents unless the folder says otherwise) or trained on a corpus
(`data.tokenizer=wordpiece`: BERT's pre-tokenization on whitespace and punctuation, case
kept). Unlike byte-level BPE it is not lossless: decoding joins words with single spaces,
and a character outside the vocabulary becomes the unknown token. Everything else (ids,
special tokens, JSON, save and load) is `BpeTokenizer`'s: both wrap a `tokenizers.Tokenizer`.
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

import tokenizers
from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

from transformer_jax.data.tokenizers import special_tokens as special_tokens_lib
from transformer_jax.data.tokenizers.bpe_tokenizer import BpeTokenizer, _one_line
from transformer_jax.errors import DataError


class WordPieceTokenizer(BpeTokenizer):
  """Special tokens take the first ids, then the learned word pieces."""

  @classmethod
  def train(cls, texts: Iterable[str], vocab_size: int,
            special_tokens: Sequence[str] = ()) -> WordPieceTokenizer:
    """Learns a vocabulary of `vocab_size` pieces (special tokens included). The unknown
    token (`special_tokens.UNK`) is added after the requested ones when they lack it."""
    special_tokens = list(special_tokens)
    if special_tokens_lib.UNK not in special_tokens:
      special_tokens.append(special_tokens_lib.UNK)
    if len(set(special_tokens)) != len(special_tokens) or "" in special_tokens:
      raise ValueError(f"special tokens must be distinct and non-empty: {special_tokens}")
    tokenizer = tokenizers.Tokenizer(models.WordPiece(unk_token=special_tokens_lib.UNK))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special_tokens,
                                        show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return cls(tokenizer)

  @classmethod
  def load(cls, path: str) -> WordPieceTokenizer:
    if not os.path.isfile(path):
      raise DataError(f"tokenizer file not found: {path}")
    try:
      tokenizer = tokenizers.Tokenizer.from_file(path)
    except Exception as e:  # The library raises bare Exceptions.
      raise DataError(f"cannot load tokenizer {path}: {_one_line(e)}") from e
    if not isinstance(tokenizer.model, models.WordPiece):
      raise DataError(f"cannot load tokenizer {path}: its model is "
                      f"{type(tokenizer.model).__name__}, not WordPiece")
    return cls(tokenizer)
