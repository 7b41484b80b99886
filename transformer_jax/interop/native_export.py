"""The project's own export format: a directory readable without this package's checkpoints.

  model.safetensors  the parameter tree, one tensor per path ('block_0/attention/query/kernel');
                     with model.quantize=int8 the matmul weights are int8, each with its
                     float32 per-output-channel '<path>_scale' (see quantization/int8.py)
  config.json        the resolved experiment config (`configuration.to_dict`)
  vocabulary.json or tokenizer.json, as in a workdir

`read` gives the parameters back as numpy arrays at the same paths.
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np
from safetensors.numpy import load_file, save_file

from transformer_jax import configuration
from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data import tokenizer as tokenizer_lib
from transformer_jax.training import parameter_paths

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def write(directory: str, cfg: ExperimentConfig, tokenizer, params) -> list[str]:
  """Writes the three files into `directory` (created); returns their paths."""
  os.makedirs(directory, exist_ok=True)
  leaves = {path: np.asarray(leaf) for path, leaf in
            parameter_paths.flat(jax.device_get(params)).items()}
  weights = os.path.join(directory, WEIGHTS_FILE)
  save_file(leaves, weights, metadata={"format": "transformer_jax",
                                       "quantize": cfg.model.quantize})
  config = os.path.join(directory, CONFIG_FILE)
  with open(config, "w", encoding="utf-8") as f:
    json.dump(configuration.to_dict(cfg), f, indent=2)
  return [weights, config, tokenizer_lib.save(tokenizer, directory)]


def read(directory: str) -> tuple[dict, dict]:
  """(the nested parameter dict of numpy arrays, the config as a dict)."""
  with open(os.path.join(directory, CONFIG_FILE), encoding="utf-8") as f:
    config = json.load(f)
  return parameter_paths.nested(load_file(os.path.join(directory, WEIGHTS_FILE))), config
