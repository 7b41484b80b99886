"""A task's corpus from `data.*`: read (any format), then cleaned.

`sources.read_documents` reads, `cleaning.clean` cleans; this module applies
`data.*` to both, once for every task. A named dataset (`data.dataset`) is read from
the catalog's files instead, split as its files are (`dataset_splits`).
"""

from __future__ import annotations

import dataclasses

from absl import logging

from transformer_jax.config_sections import DataConfig
from transformer_jax.data.corpora import catalog, cleaning, sources, text_files
from transformer_jax.errors import ConfigError


def read(d: DataConfig) -> sources.Corpus:
  """`data.*`'s corpus as read (uncleaned); replaced invalid bytes are logged."""
  if not d.path and d.format != "python_stdlib":
    raise ConfigError("data.path", "must name a file (or set data.dataset)")
  corpus = sources.read_documents(d.path, d.format, text_field=d.text_field,
                                  target_field=d.target_field,
                                  target_path=d.target_path, invalid_utf8=d.invalid_utf8)
  if corpus.replaced_bytes:
    logging.warning("replaced %d invalid UTF-8 bytes in %s", corpus.replaced_bytes,
                    d.path or d.format)
  return corpus


def cleaning_rules(d: DataConfig) -> cleaning.CleaningConfig:
  return cleaning.CleaningConfig(d.unicode_normalization, d.remove_control_characters,
                                 d.normalize_whitespace)


def texts(d: DataConfig) -> list[sources.Document]:
  """Cleaned documents for a language model (a pair becomes one `source<TAB>target` text)."""
  corpus, rules = read(d), cleaning_rules(d)
  documents = []
  for document in corpus.documents:
    text = document.text if document.target is None else f"{document.text}\t{document.target}"
    documents.append(dataclasses.replace(document, text=cleaning.clean(text, rules)))
  return documents


def dataset_splits(d: DataConfig) -> dict[str, list[sources.Document]]:
  """A named text dataset's own train/validation/test files (`catalog.resolve`), cleaned:
  one document per split, named `<dataset>:<split>`, its text the whole file."""
  paths, rules = catalog.resolve(d.dataset, d.data_dir), cleaning_rules(d)
  splits = {}
  for split in sources.SPLITS:
    text, replaced = text_files.read_corpus_file(paths[split], d.invalid_utf8)
    if replaced:
      logging.warning("replaced %d invalid UTF-8 bytes in %s", replaced, paths[split])
    splits[split] = [sources.Document(cleaning.clean(text, rules), f"{d.dataset}:{split}")]
  return splits
