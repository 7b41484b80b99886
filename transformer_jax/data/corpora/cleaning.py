"""Text cleaning before tokenization, each step a switch that is off by default.

Corpora differ in what counts as noise: Unicode compatibility forms and control
characters in web text, runs of spaces in extracted prose. But code needs its
indentation and tabs, so every step is opt-in and the defaults return the text
unchanged. Steps run in a fixed order:

  1. line endings: "\\r\\n" and lone "\\r" become "\\n" (when either of the last
     two steps is on, so that a "\\r" neither vanishes, joining two lines, nor
     hides trailing spaces);
  2. remove_control_characters: Unicode categories Cc and Cf, except "\\n" and
     "\\t" (Cf includes zero-width joiners and soft hyphens too);
  3. unicode_normalization: NFC or NFKC (after step 2, so that a removed
     character no longer blocks a composition);
  4. normalize_whitespace: after a line's indentation, runs of spaces become one
     space; trailing spaces and tabs go; 3 or more blank lines become 2. Tabs
     inside lines and leading indentation are kept, so code still parses (after
     step 3, since NFKC turns some characters, such as U+00A0, into spaces).
"""

import dataclasses
import functools
import re
import sys
import unicodedata

from transformer_jax.config_choices import NORMALIZATIONS

_KEPT_CONTROL_CHARACTERS = frozenset("\n\t")
_RUN_OF_SPACES = re.compile(" {2,}")
_LEADING_BLANK_LINES = re.compile(r"\A\n{3,}")  # 3+ blank lines at the start.
_INNER_BLANK_LINES = re.compile(r"\n{4,}")  # A line's end, then 3+ blank lines.


@dataclasses.dataclass(frozen=True)
class CleaningConfig:
  """Which cleaning steps run. The defaults change nothing."""
  unicode_normalization: str = "none"  # none, NFC, NFKC.
  remove_control_characters: bool = False
  normalize_whitespace: bool = False

  def __post_init__(self):
    if self.unicode_normalization not in NORMALIZATIONS:
      raise ValueError(f"data.unicode_normalization must be one of {', '.join(NORMALIZATIONS)}, "
                       f"got {self.unicode_normalization!r}")
    for field in ("remove_control_characters", "normalize_whitespace"):
      if not isinstance(getattr(self, field), bool):
        raise ValueError(f"data.{field} must be True or False, got {getattr(self, field)!r}")


def clean(text: str, config: CleaningConfig) -> str:
  """`text` with the steps `config` switches on, in the order the module docstring gives."""
  if config.remove_control_characters or config.normalize_whitespace:
    text = normalize_line_endings(text)
  if config.remove_control_characters:
    text = remove_control_characters(text)
  if config.unicode_normalization != "none":
    text = unicodedata.normalize(config.unicode_normalization, text)
  if config.normalize_whitespace:
    text = normalize_whitespace(text)
  return text


def normalize_line_endings(text: str) -> str:
  return text.replace("\r\n", "\n").replace("\r", "\n")


def remove_control_characters(text: str) -> str:
  """Drops characters of category Cc or Cf, except newline and tab."""
  return _control_character_pattern().sub("", text)


@functools.cache
def _control_character_pattern() -> re.Pattern:
  """One character class of every Cc/Cf code point: far faster than a per-character test."""
  ranges, start = [], None
  for code in range(sys.maxunicode + 2):
    removed = (code <= sys.maxunicode and chr(code) not in _KEPT_CONTROL_CHARACTERS
               and unicodedata.category(chr(code)) in ("Cc", "Cf"))
    if removed and start is None:
      start = code
    elif not removed and start is not None:
      ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(code - 1))}")
      start = None
  return re.compile(f"[{''.join(ranges)}]")


def normalize_whitespace(text: str) -> str:
  """Collapses inner runs of spaces, strips line ends, keeps at most 2 blank lines in a row.

  Expects "\\n" line endings (see `normalize_line_endings`).
  """
  text = "\n".join(_normalize_line(line) for line in text.split("\n"))
  text = _LEADING_BLANK_LINES.sub("\n\n", text)
  return _INNER_BLANK_LINES.sub("\n\n\n", text)


def _normalize_line(line: str) -> str:
  body = line.lstrip(" \t")
  indentation = line[:len(line) - len(body)]
  body = _RUN_OF_SPACES.sub(" ", body).rstrip(" \t")
  return indentation + body if body else ""
