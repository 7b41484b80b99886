"""Tokenizers: one protocol for character, BPE and WordPiece vocabularies, and where a
run's comes from.

Every kind (`char_tokenizer.CharTokenizer`, `bpe_tokenizer.BpeTokenizer`,
`wordpiece_tokenizer.WordPieceTokenizer`) encodes text to int32 ids, decodes ids to
text, names its special tokens, serialises to JSON and `save(path)` / `load(path)` one
file. `load` here reads any kind from its content. A workdir keeps its tokenizer in one
file (vocabulary.json for char, tokenizer.json for BPE and WordPiece), written when
training starts. Special tokens spelled otherwise (GPT-2's <|endoftext|>, BERT's [CLS])
answer to the project's names through `special_token_names.with_names`.

A run's tokenizer (`make`) is, in order: the file data.tokenizer_path names; the
workdir's own (a resume); the train.init_from workdir's, or the tokenizer.json of an
hf:DIR folder (a warm start: the weights' vocabulary comes with them); else one
trained on the training texts. A tokenizer of another kind than data.tokenizer is
refused with one line.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Optional, Protocol, Sequence

import numpy as np

from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data import special_token_names
from transformer_jax.data.bpe_tokenizer import BpeTokenizer
from transformer_jax.data.char_tokenizer import CharTokenizer
from transformer_jax.data.wordpiece_tokenizer import WordPieceTokenizer
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


def existing_path(cfg: ExperimentConfig, workdir: str) -> Optional[str]:
  """The file `make` loads (data.tokenizer_path, the workdir's, init_from's), or None."""
  if cfg.data.tokenizer_path:
    return cfg.data.tokenizer_path
  saved = saved_path(workdir)
  if saved is not None or not cfg.train.init_from:
    return saved
  source = cfg.train.init_source[0]
  if not os.path.isdir(source):
    raise DataError(f"config.train.init_from: {source} is not a directory")
  if cfg.train.init_from_hf is not None:
    path = os.path.join(source, HF_TOKENIZER_FILE)
    if not os.path.isfile(path):
      raise DataError(f"config.train.init_from: {source} has no {HF_TOKENIZER_FILE} (a fast "
                      "tokenizer's file; transformers' AutoTokenizer.from_pretrained(DIR)"
                      ".save_pretrained(DIR) writes one)")
    return path
  path = saved_path(source)
  if path is None:
    raise DataError(f"config.train.init_from: {source} holds no tokenizer file ({_FILES})")
  return path


def make(cfg: ExperimentConfig, workdir: str, texts: Sequence[str],
         special: Sequence[str]) -> Tokenizer:
  """The run's tokenizer (see the module docstring); `texts` train one when none exists."""
  d = cfg.data
  path = existing_path(cfg, workdir)
  if path is None:
    if d.tokenizer == "char":
      tokenizer = CharTokenizer(sorted(set("".join(texts))), special_tokens=special)
    elif d.tokenizer == "wordpiece":
      tokenizer = WordPieceTokenizer.train(texts, d.vocab_size, special)
    else:
      BpeTokenizer.check_vocab_size(d.vocab_size, special)  # One line naming data.vocab_size.
      tokenizer = BpeTokenizer.train(texts, d.vocab_size, special)
    return special_token_names.with_names(tokenizer, d.special_token_names)
  tokenizer = load(path, d.special_token_names)
  if kind(tokenizer) != d.tokenizer:
    raise ConfigError("data.tokenizer", f"is {d.tokenizer!r} but {path} holds a "
                      f"{kind(tokenizer)} tokenizer")
  return tokenizer
