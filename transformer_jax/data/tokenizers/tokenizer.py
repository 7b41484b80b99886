"""Tokenizers: one protocol for character, BPE and WordPiece vocabularies, and where a
run's comes from.

Every kind (`char_tokenizer.CharTokenizer`, `bpe_tokenizer.BpeTokenizer`,
`wordpiece_tokenizer.WordPieceTokenizer`) encodes text to int32 ids, decodes ids to
text, names its special tokens, serialises to JSON and `save(path)` / `load(path)` one
file. `load` here reads any kind from its content. A workdir keeps its tokenizer in one
file (vocabulary.json for char, tokenizer.json for BPE and WordPiece), written when
training starts. Special tokens spelled otherwise (GPT-2's <|endoftext|>, BERT's [CLS])
answer to the project's names through `special_token_names.with_names`.

A run's tokenizer (`make`) is an existing one (`Existing`: data.tokenizer_path's, the
workdir's own, or the one the weights of train.init_from bring; the run layer chooses)
or, when there is none, one trained on the training texts. An existing tokenizer of
another kind than data.tokenizer is refused with one line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Optional, Protocol, Sequence

import numpy as np

from transformer_jax.config_sections import DataConfig
from transformer_jax.data.tokenizers import special_token_names
from transformer_jax.data.tokenizers.bpe_tokenizer import BpeTokenizer
from transformer_jax.data.tokenizers.char_tokenizer import CharTokenizer
from transformer_jax.data.tokenizers.wordpiece_tokenizer import WordPieceTokenizer
from transformer_jax.errors import ConfigError, DataError

FILE_NAMES = {"char": "vocabulary.json", "bpe": "tokenizer.json",
              "wordpiece": "tokenizer.json"}
_FILES = " or ".join(dict.fromkeys(FILE_NAMES.values()))
HF_TOKENIZER_FILE = "tokenizer.json"  # A Hugging Face folder's (fast) tokenizer.


class Tokenizer(Protocol):
  """What every tokenizer offers (both kinds implement it)."""

  @property
  def vocab_size(self) -> int: ...

  @property
  def special_tokens(self) -> tuple[str, ...]: ...

  def token_id(self, token: str) -> int: ...

  def encode(self, text: str) -> np.ndarray: ...

  def decode(self, ids) -> str: ...

  def to_json(self) -> str: ...

  def save(self, path: str) -> str: ...


def kind(tokenizer: Tokenizer) -> str:
  tokenizer = special_token_names.unwrap(tokenizer)
  if isinstance(tokenizer, CharTokenizer):
    return "char"
  return "wordpiece" if isinstance(tokenizer, WordPieceTokenizer) else "bpe"


def load(path: str, names: str = "") -> Tokenizer:
  """A tokenizer file of any kind, recognised by its content; names:
  data.special_token_names (see `special_token_names.with_names`)."""
  if not os.path.exists(path):
    raise DataError(f"tokenizer file not found: {path}")
  if not os.path.isfile(path):  # A FIFO would block open().
    raise DataError(f"tokenizer file {path} is not a regular file")
  try:
    with open(path, encoding="utf-8") as f:
      contents = json.load(f)
  except (OSError, ValueError, RecursionError) as e:
    raise DataError(f"cannot load tokenizer {path}: {' '.join(str(e).split())[:200]}") from e
  if isinstance(contents, dict) and contents.get("type") == "char":
    return CharTokenizer.load(path)
  model = contents.get("model") if isinstance(contents, dict) else None
  if isinstance(model, dict) and model.get("type") == "WordPiece":
    return special_token_names.with_names(WordPieceTokenizer.load(path), names)
  return special_token_names.with_names(BpeTokenizer.load(path), names)


def saved_path(workdir: str) -> Optional[str]:
  """The tokenizer file a workdir holds, or None."""
  for name in FILE_NAMES.values():
    path = os.path.join(workdir, name)
    if os.path.exists(path):
      return path
  return None


def save(tokenizer: Tokenizer, workdir: str) -> str:
  return tokenizer.save(os.path.join(workdir, FILE_NAMES[kind(tokenizer)]))


def fingerprint(tokenizer: Tokenizer) -> dict:
  """Checkpoint metadata that tells whether a tokenizer is the one a model was trained with."""
  return {"kind": kind(tokenizer), "vocab_size": tokenizer.vocab_size,
          "sha256": hashlib.sha256(tokenizer.to_json().encode("utf-8")).hexdigest()}


def encode_all(tokenizer: Tokenizer, texts: Sequence[str]) -> list[np.ndarray]:
  """`encode` of each text; BPE spreads them over threads."""
  if isinstance(special_token_names.unwrap(tokenizer), BpeTokenizer):  # WordPiece too.
    return tokenizer.encode_batch(list(texts))
  return [tokenizer.encode(text) for text in texts]


@dataclasses.dataclass(frozen=True)
class Existing:
  """A tokenizer a run did not train: the one its weights or its workdir bring, or
  data.tokenizer_path's (the run layer chooses, see transformer_jax/run/tokenizers.py)."""
  tokenizer: Tokenizer
  path: str  # The file it was read from, for messages.


def make(d: DataConfig, existing: Optional[Existing], texts: Sequence[str],
         special: Sequence[str]) -> Tokenizer:
  """The run's tokenizer: `existing`'s (which must be of kind data.tokenizer), else one of
  kind data.tokenizer trained on `texts` with the experiment's `special` tokens."""
  if existing is None:
    if d.tokenizer == "char":
      tokenizer = CharTokenizer(sorted(set("".join(texts))), special_tokens=special)
    elif d.tokenizer == "wordpiece":
      tokenizer = WordPieceTokenizer.train(texts, d.vocab_size, special)
    else:
      BpeTokenizer.check_vocab_size(d.vocab_size, special)  # One line naming data.vocab_size.
      tokenizer = BpeTokenizer.train(texts, d.vocab_size, special)
    return special_token_names.with_names(tokenizer, d.special_token_names)
  if kind(existing.tokenizer) != d.tokenizer:
    raise ConfigError("data.tokenizer", f"is {d.tokenizer!r} but {existing.path} holds a "
                      f"{kind(existing.tokenizer)} tokenizer")
  return existing.tokenizer
