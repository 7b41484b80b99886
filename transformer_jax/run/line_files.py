"""One item a line, in and out: the sentences --mode=translate reads, the prompts of
--prompts_file, and the translations written back, with errors that name the flag.

Why not `text_files`: that reads whole corpora (gzip, byte-offset errors); these are
short user files, may be stdin ('-'), and a missing one is the user's mistake to
report in one line, naming the flag that gave it.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

from transformer_jax.errors import DataError

STDIN = "-"


def read_lines(path: str, flag: str) -> list[str]:
  """The lines of `path` (or stdin for '-'), without line ends; a final newline adds none."""
  if path == STDIN:
    try:
      return sys.stdin.read().splitlines()
    except UnicodeDecodeError as e:
      raise DataError(f"{flag}: standard input is not valid UTF-8 ({e.reason} at byte "
                      f"{e.start})") from e
  if not os.path.exists(path):
    raise DataError(f"{flag}: file not found: {path}")
  if not os.path.isfile(path):  # A directory, /dev/null, a FIFO (which would block)...
    raise DataError(f"{flag}: {path} is not a regular file")
  try:
    with open(path, encoding="utf-8") as f:
      return f.read().splitlines()
  except (OSError, UnicodeDecodeError) as e:
    raise DataError(f"{flag}: cannot read {path}: {e}") from e


def write_lines(lines: Sequence[str], path: Optional[str]) -> None:
  """One line per item to `path`, or to stdout when path is None or '-'."""
  text = "".join(f"{line}\n" for line in lines)
  if path is None or path == STDIN:
    sys.stdout.write(text)
    sys.stdout.flush()
    return
  try:
    with open(path, "w", encoding="utf-8") as f:
      f.write(text)
  except OSError as e:
    raise DataError(f"--output: cannot write {path}: {e}") from e
