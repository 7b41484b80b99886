"""Reading a text corpus: plain or gzip, UTF-8, with errors that name the file.

`read_text` is the strict whole-file reader the character-level experiments use.
`read_corpus_file` is the same reader for `sources.py`, which can also replace
invalid bytes (web-scraped corpora often hold a few) and needs to know how many.
"""

import gzip
import os
import re
import zlib

from transformer_jax.config_choices import INVALID_UTF8_POLICIES
from transformer_jax.errors import DataError

BYTE_ORDER_MARK = "\ufeff"
# `surrogateescape` turns every undecodable byte into one of these code points.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def check_invalid_utf8_policy(invalid_utf8: str) -> None:
  """Raises ValueError naming the config field unless the policy is known."""
  if invalid_utf8 not in INVALID_UTF8_POLICIES:
    raise ValueError(f"data.invalid_utf8 must be one of {', '.join(INVALID_UTF8_POLICIES)}, "
                     f"got {invalid_utf8!r}")


def read_bytes(path: str) -> bytes:
  """Returns the file's bytes. `.gz` files are decompressed transparently."""
  if not os.path.exists(path):
    raise DataError(f"data file not found: {path}")
  if os.path.isdir(path):
    raise DataError(f"data path is a directory, expected a file: {path}")
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rb") as f:
      return f.read()
  except (OSError, EOFError, zlib.error) as e:  # zlib.error: corrupt gzip data.
    raise DataError(f"cannot read data file {path}: {e}") from e


def decode_utf8(raw: bytes, path: str, invalid_utf8: str = "fail") -> tuple[str, int]:
  """(text, number of invalid bytes replaced). `path` only names the file in errors.

  "fail" raises DataError at the first invalid byte (offsets of `.gz` files count
  decompressed bytes); "replace" puts one U+FFFD per invalid sequence, as
  Python's "replace" handler does, and counts the bytes it covered.
  """
  check_invalid_utf8_policy(invalid_utf8)
  try:
    return raw.decode("utf-8"), 0
  except UnicodeDecodeError as e:
    if invalid_utf8 == "fail":
      where = " (decompressed)" if path.endswith(".gz") else ""
      raise DataError(
          f"data file {path} is not valid UTF-8 at byte offset {e.start}{where}") from e
  escaped = raw.decode("utf-8", errors="surrogateescape")
  return raw.decode("utf-8", errors="replace"), len(_ESCAPED_BYTE.findall(escaped))


def read_corpus_file(path: str, invalid_utf8: str = "fail") -> tuple[str, int]:
  """(text, invalid bytes replaced), without a leading byte order mark.

  The mark is an encoding artefact, not text: left in, it would become the first
  character of the first document (the shipped Tatoeba file starts with one).
  An empty file is not an error here; the caller judges the whole corpus.
  """
  text, replaced = decode_utf8(read_bytes(path), path, invalid_utf8)
  return text.removeprefix(BYTE_ORDER_MARK), replaced


def read_text(path: str) -> str:
  """Returns the whole file as text. `.gz` files are decompressed transparently."""
  text, _ = decode_utf8(read_bytes(path), path)
  if not text.strip():
    raise DataError(f"data file is empty: {path}")
  return text


def write_text(path: str, text: str, what: str) -> str:
  """Writes UTF-8 text to `path`; an OS error is a DataError naming `what` and the file."""
  try:
    with open(path, "w", encoding="utf-8") as f:
      f.write(text)
  except OSError as e:
    raise DataError(f"cannot save {what} {path}: {' '.join(str(e).split())}") from e
  return path
