"""Character-level tokenizer: one id per distinct character of the training corpus."""

from __future__ import annotations

import json
import os

import numpy as np

from transformer_jax.errors import DataError

FILE_NAME = "vocabulary.json"


class CharTokenizer:
  """Ids are the characters' ranks in sorted order, as in nanoGPT's shakespeare_char."""

  def __init__(self, characters: list[str]):
    if len(set(characters)) != len(characters):
      raise ValueError("duplicate characters in vocabulary")
    self.characters = list(characters)
    self._ids = {c: i for i, c in enumerate(self.characters)}
    # A lookup table makes encoding a million characters a single numpy gather.
    self._table = np.full(max(map(ord, self.characters)) + 1, -1, np.int32)
    for c, i in self._ids.items():
      self._table[ord(c)] = i

  @classmethod
  def from_text(cls, text: str) -> CharTokenizer:
    return cls(sorted(set(text)))

  @property
  def vocab_size(self) -> int:
    return len(self.characters)

  def encode(self, text: str) -> np.ndarray:
    """[N] int32 ids. Raises DataError naming the first character not in the vocabulary."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    in_range = codes < len(self._table)
    ids = np.where(in_range, self._table[np.where(in_range, codes, 0)], -1)
    if (ids < 0).any():
      bad = text[int(np.argmax(ids < 0))]
      raise DataError(f"character {bad!r} is not in the vocabulary")
    return ids.astype(np.int32)

  def decode(self, ids) -> str:
    return "".join(self.characters[int(i)] for i in ids)

  def save(self, directory: str) -> str:
    path = os.path.join(directory, FILE_NAME)
    with open(path, "w", encoding="utf-8") as f:
      json.dump({"type": "char", "characters": self.characters}, f, ensure_ascii=False)
    return path

  @classmethod
  def load(cls, directory: str) -> CharTokenizer:
    path = os.path.join(directory, FILE_NAME)
    try:
      with open(path, encoding="utf-8") as f:
        return cls(json.load(f)["characters"])
    except (OSError, ValueError, KeyError) as e:
      raise DataError(f"cannot load vocabulary {path}: {e}") from e
