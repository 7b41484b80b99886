"""A Hugging Face folder's shape and tokenizer kind, taken into a config before validation.

With `train.init_from=hf:DIR` the weights fix the model: its config.json says the
depth, widths, context, biases, activation and norms (`hf_gpt2.model_fields`,
`hf_bert.model_fields`), its tokenizer.json the tokenizer's kind. So any preset works
with such a folder: the fields the user did not set on the command line (or in
`transformer_jax.load`'s overrides) are taken from the folder; a field the user did set
and the folder contradicts is still refused, one line per field, by the import's check
(`interop/hf_import.py`). A folder that cannot be read, or of another experiment's
family, is left to that check too, which says why in one line.
"""

from __future__ import annotations

import json
import os
from typing import Collection

import ml_collections
from absl import logging

from transformer_jax.config_choices import HF_PREFIX
from transformer_jax.data.tokenizers import tokenizer as tokenizer_lib
from transformer_jax.errors import UserError
from transformer_jax.interop import hf_folder


def _tokenizer_kind(path: str) -> str:
  """'wordpiece' or 'bpe': what a Hugging Face tokenizer.json holds ('' if unreadable)."""
  try:
    with open(path, encoding="utf-8") as f:
      model = json.load(f).get("model", {})
  except (OSError, ValueError, AttributeError):
    return ""
  return "wordpiece" if isinstance(model, dict) and model.get("type") == "WordPiece" else "bpe"


def adopt(config: ml_collections.ConfigDict, explicit: Collection[str] = ()) -> list[str]:
  """Sets config's model fields (and data.tokenizer) from train.init_from=hf:DIR, except
  those named in `explicit` ('model.mlp_dim', ...). Returns the fields it changed."""
  init_from = str(config.train.get("init_from", ""))
  if not init_from.startswith(HF_PREFIX):
    return []
  path = init_from[len(HF_PREFIX):]
  try:
    folder = hf_folder.open_folder(path)
  except UserError:
    return []  # The warm start's own check says what is wrong with the folder.
  family = folder.family
  if family.EXPERIMENT != config.experiment:
    return []
  try:
    fields, _ = family.model_fields(folder.config)
  except KeyError:
    return []
  fields.pop("vocab_size")  # The tokenizer's size; the check compares the two.
  wanted = {f"model.{field}": value for field, value in fields.items()}
  kind = _tokenizer_kind(os.path.join(path, tokenizer_lib.HF_TOKENIZER_FILE))
  if kind and not config.data.get("tokenizer_path"):
    wanted["data.tokenizer"] = kind
  changed = []
  with config.unlocked():
    for name, value in wanted.items():
      section, field = name.split(".")
      if name in explicit or config[section].get(field) == value:
        continue
      config[section][field] = value
      changed.append(f"{name}={value}")
  if changed:
    logging.info("%s: from its config.json and tokenizer.json: %s", folder.name,
                 ", ".join(changed))
  return changed
