"""Byte-level BPE tokenizer: GPT-2 style subwords learned from a corpus, via HF `tokenizers`.

Byte level means the initial alphabet is all 256 bytes, so any text encodes (Chinese,
emoji, control characters) and no unknown token is needed. There is no normalizer and
no prefix space, so `decode(encode(text)) == text` exactly. The `tokenizers` library
does the training and encoding in Rust, which keeps corpora of many megabytes fast.
"""

from __future__ import annotations

import os
import re
from typing import Iterable, Sequence

import numpy as np
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from transformer_jax.data.corpora.text_files import write_text
from transformer_jax.errors import ConfigError, DataError

BYTES = 256  # The initial alphabet: every byte value.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _one_line(error: Exception) -> str:
  return " ".join(str(error).split())


class BpeTokenizer:
  """Special tokens take the first ids, then the 256 bytes, then the learned merges."""

  def __init__(self, tokenizer: tokenizers.Tokenizer):
    self._tokenizer = tokenizer

  @classmethod
  def train(cls, texts: Iterable[str], vocab_size: int,
            special_tokens: Sequence[str] = ()) -> BpeTokenizer:
    """Learns merges until `vocab_size` tokens (special tokens and bytes included).

    Deterministic: the same texts in the same order give the same vocabulary and ids.
    The vocabulary is smaller than asked only when the corpus runs out of pairs to merge.
    """
    special_tokens = list(special_tokens)
    if len(set(special_tokens)) != len(special_tokens) or "" in special_tokens:
      raise ValueError(f"special tokens must be distinct and non-empty: {special_tokens}")
    if vocab_size < BYTES + len(special_tokens):
      raise ValueError(f"vocab_size {vocab_size} is below the {BYTES} bytes plus "
                       f"{len(special_tokens)} special tokens")
    tokenizer = tokenizers.Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=special_tokens, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return cls(tokenizer)

  @staticmethod
  def check_vocab_size(vocab_size: int, special_tokens: Sequence[str] = ()) -> None:
    """Raises ConfigError naming `data.vocab_size` unless it holds the bytes and the
    special tokens (`train` itself raises ValueError: it knows no config)."""
    minimum = BYTES + len(special_tokens)
    if vocab_size < minimum:
      raise ConfigError("data.vocab_size", f"{vocab_size} is below the {BYTES} bytes plus the "
                        f"{len(special_tokens)} special tokens this experiment needs: use at "
                        f"least {minimum}")

  @property
  def vocab_size(self) -> int:
    return self._tokenizer.get_vocab_size(with_added_tokens=True)

  @property
  def special_tokens(self) -> tuple[str, ...]:
    """In id order, which is the order they were given to `train`."""
    added = sorted(self._tokenizer.get_added_tokens_decoder().items())
    return tuple(token.content for _, token in added if token.special)

  def token_id(self, token: str) -> int:
    """The id of one whole token, typically a special token such as `special_tokens.EOS`."""
    token_id = self._tokenizer.token_to_id(token)
    if token_id is None:
      raise DataError(f"token {token!r} is not in the vocabulary")
    return token_id

  def encode(self, text: str) -> np.ndarray:
    """[N] int32 ids. Special tokens written in the text encode as their single id."""
    return self.encode_batch([text])[0]

  def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
    """`encode` of each text, the texts spread over threads: the fast path for corpora."""
    texts = list(texts)
    try:
      encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
    except TypeError:  # The library's answer to a lone surrogate, which has no UTF-8.
      for text in texts:
        bad = _SURROGATE.search(text) if isinstance(text, str) else None
        if bad:
          raise DataError(f"the text holds {bad.group()!r}, not a Unicode character (invalid "
                          "UTF-8 in a command-line argument?)") from None
      raise
    return [np.asarray(encoding.ids, np.int32) for encoding in encodings]

  def decode(self, ids, skip_special_tokens: bool = False) -> str:
    """The text of `ids`; a slice that cuts a character's bytes decodes it as U+FFFD."""
    ids = np.asarray(ids, np.int64).reshape(-1)
    if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
      # The library would silently drop such ids.
      raise ValueError(f"ids must lie in [0, {self.vocab_size}), got {ids.min()}..{ids.max()}")
    return self._tokenizer.decode(ids.tolist(), skip_special_tokens=skip_special_tokens)

  def to_json(self) -> str:
    """The whole tokenizer as JSON text, in the `tokenizers` library's own format."""
    return self._tokenizer.to_str(pretty=True)

  def save(self, path: str) -> str:
    """Writes `to_json()` to one file (a workdir names it tokenizer.json)."""
    return write_text(path, self.to_json(), "tokenizer")

  @classmethod
  def load(cls, path: str) -> BpeTokenizer:
    if not os.path.exists(path):
      raise DataError(f"tokenizer file not found: {path}")
    if not os.path.isfile(path):
      raise DataError(f"tokenizer file {path} is not a regular file")
    try:
      tokenizer = tokenizers.Tokenizer.from_file(path)
    # The library raises bare Exceptions and, on some malformed files (a
    # continuing_subword_prefix longer than a merge), a Rust panic: pyo3's
    # PanicException, a BaseException.
    except BaseException as e:  # pylint: disable=broad-exception-caught
      if not isinstance(e, Exception) and type(e).__name__ != "PanicException":
        raise  # KeyboardInterrupt, SystemExit.
      raise DataError(f"cannot load tokenizer {path}: {_one_line(e)}") from e
    if not isinstance(tokenizer.model, models.BPE):
      raise DataError(f"cannot load tokenizer {path}: its model is "
                      f"{type(tokenizer.model).__name__}, not BPE")
    return cls(tokenizer)
