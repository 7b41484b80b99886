"""Which existing tokenizer a run takes, if any, before its data is read.

In order: the file data.tokenizer_path names; the workdir's own (a resume, or a mode
after training); the one the weights of train.init_from bring (a workdir's or an
exported folder's tokenizer file, a Hugging Face folder's tokenizer.json). With none, a
training run trains one on its texts (`data/tokenizers/tokenizer.py: make`) and a
read-only mode stops with one line.
"""

from __future__ import annotations

import os
from typing import Optional

from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data.tokenizers import tokenizer as tokenizer_lib
from transformer_jax.data.tokenizers.tokenizer import Existing, Tokenizer
from transformer_jax.errors import CheckpointError, DataError

FILES = " or ".join(dict.fromkeys(tokenizer_lib.FILE_NAMES.values()))


def weights_tokenizer_path(cfg: ExperimentConfig) -> str:
  """The tokenizer file that comes with train.init_from's weights; one line if it has none."""
  directory = cfg.train.init_source[0]
  if not os.path.isdir(directory):
    raise DataError(f"config.train.init_from: {directory} is not a directory")
  if cfg.train.init_from_hf is not None:
    path = os.path.join(directory, tokenizer_lib.HF_TOKENIZER_FILE)
    if not os.path.isfile(path):
      raise DataError(f"config.train.init_from: {directory} has no "
                      f"{tokenizer_lib.HF_TOKENIZER_FILE} (a fast tokenizer's file; "
                      "transformers' AutoTokenizer.from_pretrained(DIR).save_pretrained(DIR) "
                      "writes one)")
    return path
  path = tokenizer_lib.saved_path(directory)
  if path is None:
    raise DataError(f"config.train.init_from: {directory} holds no tokenizer file ({FILES})")
  return path


def existing(cfg: ExperimentConfig, workdir: Optional[str]) -> Optional[Existing]:
  """The run's existing tokenizer (see the module docstring), or None. workdir: None for
  a run without one (`transformer_jax.load` of weights alone)."""
  path = cfg.data.tokenizer_path
  if not path and workdir is not None:
    path = tokenizer_lib.saved_path(workdir)
  if not path and cfg.train.init_from:
    path = weights_tokenizer_path(cfg)
  if not path:
    return None
  return Existing(tokenizer_lib.load(path, cfg.data.special_token_names), path)


def required(cfg: ExperimentConfig, workdir: Optional[str]) -> Tokenizer:
  """The existing tokenizer of a mode that reads no data (it cannot train one), whatever
  its kind: the weights fix it, data.tokenizer is for training one."""
  found = existing(cfg, workdir)
  if found is None:
    raise CheckpointError(f"{workdir} has no {FILES}: train a model there first, or name "
                          "trained weights with --config.train.init_from")
  return found.tokenizer
