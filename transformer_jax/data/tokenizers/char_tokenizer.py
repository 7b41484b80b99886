"""Character-level tokenizer: one id per distinct character of the training corpus."""

from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np

from transformer_jax.data.corpora.text_files import write_text
from transformer_jax.errors import DataError

class CharTokenizer:
  """Ids are the characters' ranks in sorted order, as in nanoGPT's shakespeare_char.

  Special tokens, if any, take the ids after the characters', so a vocabulary without
  them keeps the ids it always had. `encode` never produces them (text is characters
  only); objectives insert them with `token_id`, and `decode` writes out their text.
  """

  def __init__(self, characters: list[str], special_tokens: Sequence[str] = ()):
    if len(set(characters)) != len(characters):
      raise ValueError("duplicate characters in vocabulary")
    self.characters = list(characters)
    self.special_tokens = tuple(special_tokens)
    self._tokens = self.characters + list(self.special_tokens)
    if len(set(self._tokens)) != len(self._tokens):
      raise ValueError("special tokens repeat each other or a character")
    self._ids = {c: i for i, c in enumerate(self._tokens)}
    # A lookup table makes encoding a million characters a single numpy gather.
    self._table = np.full(max(map(ord, self.characters)) + 1, -1, np.int32)
    for i, c in enumerate(self.characters):
      self._table[ord(c)] = i

  @classmethod
  def from_text(cls, text: str, special_tokens: Sequence[str] = ()) -> CharTokenizer:
    return cls(sorted(set(text)), special_tokens)

  @property
  def vocab_size(self) -> int:
    return len(self._tokens)

  def token_id(self, token: str) -> int:
    """The id of a character or a special token such as `special_tokens.EOS`."""
    if token not in self._ids:
      raise DataError(f"token {token!r} is not in the vocabulary")
    return self._ids[token]

  def encode(self, text: str) -> np.ndarray:
    """[N] int32 ids. Raises DataError naming the first character not in the vocabulary."""
    # surrogatepass: a lone surrogate (invalid UTF-8 in a command-line argument) is one
    # more character, reported below if the vocabulary lacks it.
    codes = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
    in_range = codes < len(self._table)
    ids = np.where(in_range, self._table[np.where(in_range, codes, 0)], -1)
    if (ids < 0).any():
      bad = text[int(np.argmax(ids < 0))]
      raise DataError(f"character {bad!r} is not in the vocabulary")
    return ids.astype(np.int32)

  def decode(self, ids) -> str:
    return "".join(self._tokens[int(i)] for i in ids)

  def to_json(self) -> str:
    """The vocabulary as JSON text, as `save` writes it."""
    contents = {"type": "char", "characters": self.characters}
    if self.special_tokens:  # Without them the file stays as it always was.
      contents["special_tokens"] = list(self.special_tokens)
    return json.dumps(contents, ensure_ascii=False)

  def save(self, path: str) -> str:
    """Writes `to_json()` to one file (a workdir names it vocabulary.json)."""
    return write_text(path, self.to_json(), "vocabulary")

  @classmethod
  def load(cls, path: str) -> CharTokenizer:
    """A vocabulary file as `save` writes it, under any name."""
    if os.path.exists(path) and not os.path.isfile(path):  # A FIFO would block open().
      raise DataError(f"vocabulary file {path} is not a regular file")
    try:
      with open(path, encoding="utf-8") as f:
        contents = json.load(f)
      return cls(contents["characters"], contents.get("special_tokens", ()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
      raise DataError(f"cannot load vocabulary {path}: {e}") from e
