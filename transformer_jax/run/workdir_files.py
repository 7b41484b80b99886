"""The files a workdir (or an exported one) holds besides checkpoints and metrics.

  config.json                      the resolved config (`configuration.to_dict`)
  vocabulary.json or tokenizer.json the tokenizer (data/tokenizers/tokenizer.py names it)
An experiment may add its own (a classifier's labels.json). `read_config` is how
`transformer_jax.load` and an adapter run's base find what a run was.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from transformer_jax import configuration
from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data.tokenizers import tokenizer as tokenizer_lib
from transformer_jax.errors import CheckpointError

CONFIG_FILE = "config.json"


def write(directory: str, cfg: ExperimentConfig, tokenizer) -> None:
  """config.json and the tokenizer file into `directory` (which exists)."""
  tokenizer_lib.save(tokenizer, directory)
  with open(os.path.join(directory, CONFIG_FILE), "w", encoding="utf-8") as f:
    json.dump(configuration.to_dict(cfg), f, indent=2)


def read_config(directory: str) -> Optional[dict[str, Any]]:
  """The config.json a workdir holds, as a dict, or None when it has none."""
  path = os.path.join(directory, CONFIG_FILE)
  if not os.path.isfile(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      config = json.load(f)
  except (OSError, ValueError) as e:
    raise CheckpointError(f"{path} is unreadable: {' '.join(str(e).split())[:200]}") from e
  if not isinstance(config, dict):
    raise CheckpointError(f"{path} does not hold a config (a JSON object)")
  return config
