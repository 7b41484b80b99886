"""Labelled text for classification: (text, label) pairs in train/validation/test splits.

`labelled_splits(cfg)` reads either
  - `data.dataset="uci-sentiment"`: the catalog's three files and their fixed split
    (below), or
  - `data.path`: tsv files (`text<TAB>label`, further columns ignored) or jsonl files
    (`data.text_field`, `data.label_field`), split by a hash of the text:
    `data.validation_fraction` and `data.test_fraction` of the distinct texts are held
    out. A text's split depends on the text alone (not on train.seed), so runs with
    different seeds share one split, and the same text never straddles two splits.
Texts are cleaned as `data.*` says and stripped of surrounding whitespace; blank lines
are skipped. A label is a string: a tsv column as written (stripped), a JSON string as
it is, a JSON number or boolean as JSON writes it ("1", "2.5", "true"). A line without
a label or a text stops with one line naming the file and line.

UCI Sentiment Labelled Sentences has no official split; this one is fixed:
  1. read: lines cut at "\\n" only (imdb_labelled.txt holds U+0085 inside sentences),
     no quoting ('"' is text), the sentence before the tab, the label after it;
  2. duplicates: sentences are compared with case folded and runs of whitespace made
     one space; the first occurrence (in the order amazon, imdb, yelp, then by line) is
     kept and later ones dropped (a sentence seen with two labels would be dropped
     whole; there is none). So no test sentence appears in training, even re-cased;
  3. split: stratified by source file and label (six groups); within a group the
     sentences are ordered by sha256 of (catalog split_seed 331, the compared form), the
     first round(10%) go to validation, the next round(10%) to test, the rest to train.
It gives 2,381 / 299 / 299 sentences (train / validation / test) of the 2,979 distinct
ones (21 of the 3,000 lines repeat an earlier one); `experiments/README.md` has the
counts per source and label.
"""

from __future__ import annotations

import collections
import dataclasses

from absl import logging

from transformer_jax import experiment_rules
from transformer_jax.config_sections import DataConfig, ExperimentConfig
from transformer_jax.data.corpora import catalog, cleaning, corpus, sources
from transformer_jax.data.corpora.text_files import read_corpus_file
from transformer_jax.errors import ConfigError, DataError

FORMATS = ("tsv", "jsonl")  # The data.format values a labelled file may have.
HASH_SEED = 0  # data.path's split: fixed, so it does not move with train.seed.
UCI_SOURCES = ("amazon", "imdb", "yelp")  # The catalog's roles, in reading order.
UCI_HELD_OUT_FRACTION = 0.1  # Of each (source, label) group: validation, and test.

Example = tuple[str, str]  # (text, label)


def validate(cfg: ExperimentConfig) -> None:
  """The config rules of labelled data; an experiment that reads it calls this."""
  d = cfg.data
  if d.dataset:
    experiment_rules.check_dataset_kind(cfg, (catalog.LABELLED,))
    return
  if d.format not in FORMATS:
    raise ConfigError("data.format", f"must be one of {FORMATS} for labelled text "
                      f"(text<TAB>label lines, or JSON lines), got {d.format!r}")
  if d.format == "jsonl":
    if not d.label_field:
      raise ConfigError("data.label_field", "must name the JSON field holding the label")
    if d.label_field == d.text_field:
      raise ConfigError("data.label_field", f"must differ from data.text_field "
                        f"({d.text_field!r})")


def labelled_splits(cfg: ExperimentConfig) -> dict[str, list[Example]]:
  """{"train", "validation", "test": [(text, label), ...]} (see the module docstring)."""
  validate(cfg)
  d = cfg.data
  if d.dataset:
    splits = uci_sentiment_splits(d.data_dir, corpus.cleaning_rules(d))
  else:
    read = lambda path: _read_files(dataclasses.replace(d, path=path))
    splits = sources.with_split_files(
        d, read(d.path), lambda path: [(text, label) for text, label, _ in read(path)],
        _hash_split)
  for split, examples in splits.items():
    labels = collections.Counter(label for _, label in examples)
    logging.info("%s split: %d examples (%s)", split, len(examples),
                 ", ".join(f"{label}: {count}" for label, count in sorted(labels.items())))
  return splits


def parse_tsv(path: str, text: str) -> list[tuple[str, str, str]]:
  """(text, label, where) of each non-blank `text<TAB>label` line; where = path:line."""
  examples = []
  for where, fields in sources.tsv_rows(path, text):
    if len(fields) < 2 or not fields[1].strip():
      raise DataError(f"{where}: no label (expected text<TAB>label)")
    examples.append((fields[0], fields[1].strip(), where))
  return examples


def parse_jsonl(path: str, text: str, text_field: str,
                label_field: str) -> list[tuple[str, str, str]]:
  """(text, label, where) of each non-blank JSON line; where = path:line."""
  return [(sources.string_field(where, record, text_field),
           _label(where, label_field, sources.json_field(where, record, label_field)), where)
          for where, record in sources.jsonl_records(path, text)]


def _label(where: str, field: str, value) -> str:
  if isinstance(value, bool):
    return "true" if value else "false"
  if isinstance(value, (int, float)):
    return str(value)
  if isinstance(value, str) and value.strip():
    return value.strip()
  kind = "empty" if isinstance(value, str) else type(value).__name__
  raise DataError(f"{where}: field {field!r} is {'null' if value is None else kind}, "
                  "expected a label (a non-empty string or a number)")


def _cleaned(rules: cleaning.CleaningConfig, rows) -> list[tuple[str, str, str]]:
  """Texts cleaned (data.* rules) and stripped; an empty text is an error naming its line."""
  examples = []
  for text, label, where in rows:
    text = cleaning.clean(text, rules).strip()
    if not text:
      raise DataError(f"{where}: no text before the label")
    examples.append((text, label, where))
  return examples


def _read_files(d: DataConfig) -> list[tuple[str, str, str]]:
  rows = []
  for path in sources.expand_paths(d.path):
    text, replaced = read_corpus_file(path, d.invalid_utf8)
    if replaced:
      logging.warning("replaced %d invalid UTF-8 bytes in %s", replaced, path)
    rows.extend(parse_tsv(path, text) if d.format == "tsv"
                else parse_jsonl(path, text, d.text_field, d.label_field))
  if not rows:
    raise DataError(f"no labelled examples in {d.path}")
  return _cleaned(corpus.cleaning_rules(d), rows)


def _hash_split(rows, validation_fraction: float,
                test_fraction: float) -> dict[str, list[Example]]:
  """Distinct texts split by sources.split_documents (a hash of the text, HASH_SEED);
  every example goes where its text went."""
  distinct = list(dict.fromkeys(text for text, _, _ in rows))
  parts = sources.split_documents([sources.Document(text, text) for text in distinct],
                                  validation_fraction, test_fraction, HASH_SEED)
  split_of = {document.name: split for split, documents in parts.items()
              for document in documents}
  splits = {split: [] for split in sources.SPLITS}
  for text, label, _ in rows:
    splits[split_of[text]].append((text, label))
  return splits


def comparison_key(text: str) -> str:
  """The form in which two UCI sentences count as the same: case folded, whitespace
  runs made one space."""
  return " ".join(text.split()).casefold()


def uci_sentiment_splits(data_dir: str = "", rules: cleaning.CleaningConfig = (
    cleaning.CleaningConfig())) -> dict[str, list[Example]]:
  """The fixed split of UCI sentiment from `data_dir` (see `catalog.resolve`); `rules`
  clean the sentences (the default changes nothing)."""
  dataset = catalog.CATALOG["uci-sentiment"]
  paths = catalog.resolve(dataset.name, data_dir)
  rows = []  # (text, label, source) in reading order.
  for source in UCI_SOURCES:
    text, _ = read_corpus_file(paths[source], "fail")
    rows.extend((text, label, source) for text, label, _ in
                _cleaned(rules, parse_tsv(paths[source], text)))
  return uci_split(rows, dataset.split_seed)


def uci_split(rows, seed: int) -> dict[str, list[Example]]:
  """rows: (text, label, source) in reading order -> the fixed split of the module doc."""
  labels_of = collections.defaultdict(set)
  for text, label, _ in rows:
    labels_of[comparison_key(text)].add(label)
  kept, seen = [], set()
  for index, (text, label, source) in enumerate(rows):
    key = comparison_key(text)
    if key in seen or len(labels_of[key]) > 1:
      continue
    seen.add(key)
    kept.append((index, text, label, source))
  groups = collections.defaultdict(list)
  for row in kept:
    groups[(row[3], row[2])].append(row)
  split_of = {}
  for members in groups.values():
    members.sort(key=lambda row: (sources.hash_position(seed, comparison_key(row[1])), row[0]))
    held_out = round(UCI_HELD_OUT_FRACTION * len(members))
    for position, row in enumerate(members):
      split_of[row[0]] = ("validation" if position < held_out else
                          "test" if position < 2 * held_out else "train")
  splits = {split: [] for split in sources.SPLITS}
  for index, text, label, _ in kept:
    splits[split_of[index]].append((text, label))
  return splits
