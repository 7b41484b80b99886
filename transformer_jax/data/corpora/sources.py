"""Reading corpora into documents, and splitting documents into train/validation/test.

A document is the unit a split assigns: a file, a JSONL record, a translation
pair, or a standard-library module. Splitting whole documents (rather than
cutting one long token stream) keeps validation text unseen in training; for the
standard library it means validation modules are code the model never read.

Every reader returns documents in a fixed order (sorted files, then lines), so a
corpus reads the same on every machine. Documents with no non-whitespace text
are dropped; a corpus left with none is an error.
"""

import collections
import dataclasses
import glob
import hashlib
import json
import os
import sysconfig
from typing import Callable, Iterable, Optional, Sequence, TypeVar

from transformer_jax.config_choices import DATA_FORMATS
from transformer_jax.data.corpora.text_files import check_invalid_utf8_policy, read_corpus_file
from transformer_jax.errors import DataError

T = TypeVar("T")
SPLITS = ("train", "validation", "test")

_GLOB_CHARACTERS = frozenset("*?[")
# Directories of the standard library that are not the library itself: installed
# packages, and test suites (which hold deliberately broken or odd code).
_EXCLUDED_DIRECTORY_NAMES = frozenset({"site-packages", "dist-packages", "test", "tests",
                                       "__pycache__"})
_EXCLUDED_RELATIVE_DIRECTORIES = frozenset({os.path.join("idlelib", "idle_test"),
                                            os.path.join("lib2to3", "tests")})


@dataclasses.dataclass(frozen=True)
class Document:
  """One unit of a corpus. `name` is unique within a corpus and decides its split.

  name: the file path, `path:line` for line-based formats, or the dotted module
  name for the standard-library corpus. target: the translation, for pairs.
  """
  text: str
  name: str
  target: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Corpus:
  """The documents of a corpus, and how many invalid UTF-8 bytes were replaced."""
  documents: tuple[Document, ...]
  replaced_bytes: int


# pylint: disable-next=redefined-builtin
def read_documents(path: str, format: str, *, text_field: str = "text",
                   target_path: str = "", invalid_utf8: str = "fail",
                   target_field: str = "") -> Corpus:
  """Reads a corpus in one of DATA_FORMATS. `.gz` files are decompressed transparently.

  text, jsonl, tsv: `path` is a file, a glob, or a comma-separated list of them.
  aligned: `path` holds the sources and `target_path` the targets, line by line.
  python_stdlib: the running interpreter's standard library; `path` is ignored.
  invalid_utf8: "fail" (DataError naming file and byte offset) or "replace".
  target_field: jsonl: the field holding a pair's target (its text: `text_field`).
  """
  check_invalid_utf8_policy(invalid_utf8)
  if format not in DATA_FORMATS:
    raise DataError(f"unknown data format {format!r} for {path or 'the corpus'}: "
                    f"expected one of {', '.join(DATA_FORMATS)}")
  if target_path and format != "aligned":
    raise DataError(f"target_path {target_path} is only read by format 'aligned', "
                    f"not {format!r}")
  if format == "python_stdlib":
    where = python_stdlib_directory()
    documents, replaced = _read_python_stdlib(invalid_utf8)
  elif not path.strip():
    raise DataError(f"no data path given for format {format!r}")
  elif format == "aligned":
    where = f"{path} and {target_path}"
    documents, replaced = _read_aligned(path, target_path, invalid_utf8)
  else:
    where = path
    documents, replaced = _read_files(expand_paths(path), format, text_field, invalid_utf8,
                                      target_field)
  kept = tuple(document for document in documents if _has_text(document))
  if not kept:
    raise DataError(f"corpus is empty (no non-whitespace text): {where}")
  return Corpus(kept, replaced)


def expand_paths(path: str) -> list[str]:
  """Sorted, de-duplicated files named by a file, a glob, or a comma-separated list.

  A missing literal file is kept, so that reading it fails with the usual error;
  a glob that matches no file fails here. A path that is itself an existing file
  is taken whole, so a file name with a comma still works.
  """
  if os.path.isfile(path):
    return [os.path.normpath(path)]
  files = set()
  for entry in path.split(","):
    entry = os.path.expanduser(entry.strip())
    if not entry:
      continue
    if _GLOB_CHARACTERS.isdisjoint(entry):
      files.add(os.path.normpath(entry))
      continue
    matches = [match for match in glob.glob(entry, recursive=True) if os.path.isfile(match)]
    if not matches:
      raise DataError(f"no data files match {entry}")
    files.update(os.path.normpath(match) for match in matches)
  if not files:
    raise DataError(f"no data path given in {path!r}")
  return sorted(files)


def numbered_lines(text: str) -> list[tuple[int, str]]:
  """(1-based line number, line) pairs, without line endings.

  Splits on "\\n" only: `str.splitlines` would also split on U+2028, U+0085 and
  other characters that may sit inside a sentence or a JSON string.
  """
  lines = text.split("\n")
  if lines[-1] == "":
    lines.pop()
  return [(number, line.removesuffix("\r")) for number, line in enumerate(lines, 1)]


def parse_text(path: str, text: str) -> list[Document]:
  """The whole file is one document, named by its path."""
  return [Document(text, path)]


def parse_jsonl(path: str, text: str, text_field: str,
                target_field: str = "") -> list[Document]:
  """One JSON object per line, its text in `text_field` (and a pair's target in
  `target_field`, when given); blank lines skipped."""
  documents = []
  for where, record in jsonl_records(path, text):
    values = [string_field(where, record, field)
              for field in ((text_field, target_field) if target_field else (text_field,))]
    documents.append(Document(values[0], where, values[1] if target_field else None))
  return documents


def jsonl_records(path: str, text: str) -> list[tuple[str, dict]]:
  """(path:line, the JSON object) of every non-blank line; DataError naming the line of one
  that is not a JSON object."""
  return [(f"{path}:{number}", json_object(f"{path}:{number}", line))
          for number, line in numbered_lines(text) if line.strip()]


def string_field(where: str, record: dict, field: str) -> str:
  """record[field], which must be a string (see `json_field`)."""
  value = json_field(where, record, field)
  if not isinstance(value, str):
    raise DataError(f"{where}: field {field!r} is {type(value).__name__}, expected a string")
  return value


def json_object(where: str, line: str) -> dict:
  """One line of a JSONL file as a JSON object; DataError naming `where` (file:line) else."""
  try:
    record = json.loads(line)
  except json.JSONDecodeError as e:
    raise DataError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from e
  except RecursionError as e:
    raise DataError(f"{where}: JSON nested too deeply") from e
  except ValueError as e:  # A number of more than 4300 digits.
    raise DataError(f"{where}: not valid JSON ({e})") from e
  if not isinstance(record, dict):
    raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
  return record


def json_field(where: str, record: dict, field: str):
  """record[field]; DataError naming `where` and the record's fields when it has none."""
  if field not in record:
    fields = ", ".join(name if name.isprintable() else repr(name) for name in record)
    raise DataError(f"{where}: no field {field!r} (fields: {fields})")
  return record[field]


def parse_tsv(path: str, text: str) -> list[Document]:
  """`source<TAB>target[<TAB>ignored...]` per line; blank lines skipped.

  Columns after the second are ignored: Tatoeba exports carry an attribution there.
  """
  documents = []
  for where, fields in tsv_rows(path, text):
    if len(fields) < 2:
      raise DataError(f"{where}: no tab between source and target")
    documents.append(Document(fields[0], where, fields[1]))
  return documents


def tsv_rows(path: str, text: str) -> list[tuple[str, list[str]]]:
  """(path:line, the line's tab-separated fields) of every non-blank line."""
  return [(f"{path}:{number}", line.split("\t")) for number, line in numbered_lines(text)
          if line.strip()]


def python_stdlib_directory() -> str:
  return sysconfig.get_paths()["stdlib"]


def python_stdlib_files() -> list[tuple[str, str]]:
  """Sorted (dotted module name, file path) of the standard library's own modules.

  Test suites and installed packages are left out, and so are files whose path is
  not an importable module name (such as `config-3.11-*/python-config.py`).
  """
  root = python_stdlib_directory()
  modules = []
  for directory, subdirectories, files in os.walk(root):
    relative = os.path.relpath(directory, root)
    subdirectories[:] = [name for name in subdirectories
                         if not _is_excluded_directory(relative, name)]
    for file in files:
      name = _module_name(relative, file)
      if name is not None:
        modules.append((name, os.path.join(directory, file)))
  return sorted(modules)


def split_documents(documents: Iterable[Document], validation_fraction: float,
                    test_fraction: float, seed: int) -> dict[str, tuple[Document, ...]]:
  """{train, validation, test: documents}, each split keeping the input order.

  A document's split depends only on (seed, its name), through SHA-256, so it does
  not move when documents are added, removed or reordered, nor between Python
  processes (unlike `hash()`). Train and every split with a fraction above zero
  are made non-empty: if hashing leaves one empty, the lowest-hash document of the
  largest split moves into it (only then can one addition move another document).
  A fraction of zero (the config's default test_fraction) leaves that split empty.
  """
  _check_fractions(validation_fraction, test_fraction)
  documents = tuple(documents)
  needed = _needed_splits(validation_fraction, test_fraction)
  if len(documents) < len(needed):
    names = ", ".join(document.name for document in documents) or "none"
    raise DataError(f"cannot split {len(documents)} document(s) into {', '.join(needed)}: "
                    f"need at least {len(needed)} ({names})")
  positions = [hash_position(seed, document.name) for document in documents]
  assignment = [_split_at(position, validation_fraction, test_fraction)
                for position in positions]
  assignment = _fill_empty_splits(positions, assignment, needed)
  return {split: tuple(document for document, assigned in zip(documents, assignment)
                       if assigned == split)
          for split in SPLITS}


def with_split_files(d, items: Sequence[T], read: Callable[[str], Sequence[T]],
                     split: Callable[[Sequence[T], float, float], dict[str, Sequence[T]]]
                     ) -> dict[str, list[T]]:
  """{train, validation, test} of data.path's `items`, with data.validation_path and
  data.test_path (read by `read`) replacing the split they name: split(items,
  validation_fraction, test_fraction) holds out only the splits no file gives."""
  parts = split(items, 0.0 if d.validation_path else d.validation_fraction,
                0.0 if d.test_path else d.test_fraction)
  parts = {name: list(members) for name, members in parts.items()}
  for name, path in (("validation", d.validation_path), ("test", d.test_path)):
    if path:
      parts[name] = list(read(path))
  return parts


def hash_position(seed: int, name: str) -> float:
  """A stable pseudo-random number in [0, 1) from (seed, name)."""
  key = f"{seed}\x00{name}".encode("utf-8", errors="surrogatepass")
  return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64


def _read_files(files: list[str], format: str, text_field: str,  # pylint: disable=redefined-builtin
                invalid_utf8: str, target_field: str = "") -> tuple[list[Document], int]:
  documents, replaced = [], 0
  for file in files:
    text, file_replaced = read_corpus_file(file, invalid_utf8)
    replaced += file_replaced
    if format == "jsonl":
      documents.extend(parse_jsonl(file, text, text_field, target_field))
    elif format == "tsv":
      documents.extend(parse_tsv(file, text))
    else:
      documents.extend(parse_text(file, text))
  return documents, replaced


def _read_aligned(path: str, target_path: str,
                  invalid_utf8: str) -> tuple[list[Document], int]:
  """Line n of `path` is the source of line n of `target_path`."""
  if not target_path.strip():
    raise DataError(f"format 'aligned' needs target_path, the file of targets for {path}")
  sources, source_replaced = read_corpus_file(path, invalid_utf8)
  targets, target_replaced = read_corpus_file(target_path, invalid_utf8)
  source_lines, target_lines = numbered_lines(sources), numbered_lines(targets)
  if len(source_lines) != len(target_lines):
    raise DataError(f"aligned files differ in length: {path} has {len(source_lines)} lines, "
                    f"{target_path} has {len(target_lines)}")
  documents = [Document(source, f"{path}:{number}", target)
               for (number, source), (_, target) in zip(source_lines, target_lines)]
  return documents, source_replaced + target_replaced


def _read_python_stdlib(invalid_utf8: str) -> tuple[list[Document], int]:
  documents, replaced = [], 0
  for name, file in python_stdlib_files():
    text, file_replaced = read_corpus_file(file, invalid_utf8)
    replaced += file_replaced
    documents.append(Document(text, name))
  return documents, replaced


def _is_excluded_directory(relative_parent: str, name: str) -> bool:
  relative = os.path.normpath(os.path.join(relative_parent, name))
  return name in _EXCLUDED_DIRECTORY_NAMES or relative in _EXCLUDED_RELATIVE_DIRECTORIES


def _module_name(relative_directory: str, file: str) -> Optional[str]:
  """`json/decoder.py` -> "json.decoder", `json/__init__.py` -> "json"; None if no module."""
  if not file.endswith(".py"):
    return None
  parts = [] if relative_directory == os.curdir else relative_directory.split(os.sep)
  stem = file[:-len(".py")]
  if stem != "__init__":
    parts.append(stem)
  if not parts or not all(part.isidentifier() for part in parts):
    return None
  return ".".join(parts)


def _has_text(document: Document) -> bool:
  return bool(document.text.strip() or (document.target or "").strip())


def _check_fractions(validation_fraction: float, test_fraction: float) -> None:
  """Held-out shares in [0, 1) that leave some documents for training."""
  for field, value in (("validation_fraction", validation_fraction),
                       ("test_fraction", test_fraction)):
    if not 0 <= value < 1:
      raise ValueError(f"data.{field} must be in [0, 1), got {value}")
  if validation_fraction + test_fraction >= 1:
    raise ValueError(f"data.validation_fraction + data.test_fraction must be below 1, got "
                     f"{validation_fraction} + {test_fraction}")


def _needed_splits(validation_fraction: float, test_fraction: float) -> tuple[str, ...]:
  fractions = {"train": 1.0, "validation": validation_fraction, "test": test_fraction}
  return tuple(split for split in SPLITS if fractions[split] > 0)


def _split_at(position: float, validation_fraction: float, test_fraction: float) -> str:
  if position < validation_fraction:
    return "validation"
  if position < validation_fraction + test_fraction:
    return "test"
  return "train"


def _fill_empty_splits(positions: list[float], assignment: list[str],
                       needed: tuple[str, ...]) -> list[str]:
  """Moves one document into each empty needed split, from the largest (ties: SPLITS order)."""
  assignment = list(assignment)
  for split in needed:
    counts = collections.Counter(assignment)
    if counts[split]:
      continue
    donor = max(SPLITS, key=lambda name: counts[name])  # pylint: disable=cell-var-from-loop
    index = min((i for i, assigned in enumerate(assignment) if assigned == donor),
                key=lambda i: (positions[i], i))
    assignment[index] = split
  return assignment
