"""The project's own export format: a directory readable without this package's checkpoints.

  model.safetensors  the parameter tree, one tensor per path ('block_0/attention/query/kernel');
                     with model.quantize=int8 the matmul weights are int8, each with its
                     float32 per-output-channel '<path>_scale' (see quantization/int8.py)
  config.json        the resolved experiment config (`configuration.to_dict`)
  vocabulary.json or tokenizer.json, as in a workdir

`read` gives the parameters back as numpy arrays at the same paths; `NativeSource` is
such a folder as a weights source (`train.init_from=DIR`, `transformer_jax.load(DIR)`).
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from transformer_jax import configuration, parameter_paths
from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data.tokenizers import tokenizer as tokenizer_lib
from transformer_jax.errors import CheckpointError

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


def is_export(directory: str) -> bool:
  """Whether `directory` looks like this format (its weights file and config.json)."""
  return all(os.path.isfile(os.path.join(directory, name)) for name in (WEIGHTS_FILE,
                                                                         CONFIG_FILE))


_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "I8": "int8",
           "I32": "int32", "F64": "float64"}


class NativeSource:
  """A folder of `--mode=export` (float32) as a weights source (see weights_source.py)."""

  def __init__(self, directory: str):
    self.name = self.directory = directory
    self.step = 0
    self.tokenizer_fingerprint = None
    self._file = os.path.join(directory, WEIGHTS_FILE)
    with safe_open(self._file, framework="numpy") as f:
      metadata = f.metadata() or {}
      self._signatures = {name: f"{_DTYPES.get(f.get_slice(name).get_dtype(), '?')}"
                                f"{list(f.get_slice(name).get_shape())}" for name in f.keys()}
    if metadata.get("quantize", "none") != "none":
      raise CheckpointError(f"{directory} is an {metadata['quantize']} export, for inference "
                            "elsewhere: load the float checkpoint it came from, with "
                            f"model.quantize={metadata['quantize']}")

  def signatures(self) -> dict[str, str]:
    return dict(self._signatures)

  def read(self, abstract_params) -> Any:
    wanted = parameter_paths.flat(abstract_params)
    with safe_open(self._file, framework="numpy") as f:
      return parameter_paths.nested({path: jax.device_put(f.get_tensor(path),
                                                          wanted[path].sharding)
                                     for path in wanted})
