"""Reading a text corpus: plain or gzip, strictly UTF-8, with errors that name the file."""

import gzip
import os

from transformer_jax.errors import DataError


def read_text(path: str) -> str:
  """Returns the whole file as text. `.gz` files are decompressed transparently."""
  if not os.path.exists(path):
    raise DataError(f"data file not found: {path}")
  if os.path.isdir(path):
    raise DataError(f"data path is a directory, expected a file: {path}")
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rb") as f:
      raw = f.read()
  except (OSError, EOFError) as e:
    raise DataError(f"cannot read data file {path}: {e}") from e
  try:
    text = raw.decode("utf-8")
  except UnicodeDecodeError as e:
    raise DataError(f"data file {path} is not valid UTF-8 at byte offset {e.start}") from e
  if not text.strip():
    raise DataError(f"data file is empty: {path}")
  return text
