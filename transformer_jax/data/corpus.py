"""A task's corpus from `data.*`: read (any format), then cleaned.

`sources.read_documents` reads, `cleaning.clean` cleans; this module applies
`data.*` to both, once for every task.
"""

from __future__ import annotations

import dataclasses

from absl import logging

from transformer_jax.configuration import DataConfig
from transformer_jax.data import cleaning, sources


def read(d: DataConfig) -> sources.Corpus:
  """`data.*`'s corpus as read (uncleaned); replaced invalid bytes are logged."""
  corpus = sources.read_documents(d.path, d.format, text_field=d.text_field,
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
