"""A local Hugging Face model folder: config.json, safetensors weights, tokenizer.json.

`open_folder` checks what an import needs, each problem one line (a CheckpointError):
the folder, its config.json, a supported model_type (gpt2, bert), and weights as
`model.safetensors` or a sharded `model.safetensors.index.json`. Weights are read with
the `safetensors` package into numpy (float16 and bfloat16 too), never with torch.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from types import ModuleType
from typing import Any

import numpy as np
from safetensors import safe_open

from transformer_jax.errors import CheckpointError
from transformer_jax.interop import hf_bert, hf_gpt2

FAMILIES = {module.MODEL_TYPE: module for module in (hf_gpt2, hf_bert)}
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
CONVERT_HINT = ("convert it once where torch is installed: python -c \"import transformers; "
                "transformers.AutoModel.from_pretrained('DIR').save_pretrained('DIR')\" "
                "(save_pretrained writes model.safetensors)")


@dataclasses.dataclass
class HfFolder:
  path: str
  config: dict[str, Any]  # config.json
  family: ModuleType  # hf_gpt2 or hf_bert
  files: dict[str, str]  # tensor name -> the safetensors file holding it
  shapes: dict[str, tuple[int, ...]]
  dtypes: dict[str, str]  # safetensors' names: F32, F16, BF16, ...

  @property
  def name(self) -> str:
    return f"hf:{self.path}"

  def read(self, name: str) -> np.ndarray:
    """One tensor as float32 numpy."""
    with safe_open(self.files[name], framework="numpy") as f:
      return np.asarray(f.get_tensor(name), np.float32)


def _fail(path: str, message: str) -> None:
  raise CheckpointError(f"config.train.init_from: hf:{path} {message}")


def _weight_files(path: str) -> list[str]:
  index = os.path.join(path, INDEX_FILE)
  if os.path.isfile(index):
    try:
      with open(index, encoding="utf-8") as f:
        weight_map = json.load(f)["weight_map"]
    except (OSError, ValueError, KeyError) as e:
      _fail(path, f"has an unreadable {INDEX_FILE}: {e}")
    files = sorted({os.path.join(path, name) for name in weight_map.values()})
    for file in files:
      if not os.path.isfile(file):
        _fail(path, f"lacks {os.path.basename(file)}, which {INDEX_FILE} names")
    return files
  single = os.path.join(path, WEIGHTS_FILE)
  if os.path.isfile(single):
    return [single]
  others = sorted(os.path.basename(p) for p in glob.glob(os.path.join(path, "*"))
                  if p.endswith((".bin", ".h5", ".msgpack", ".pt", ".pth", ".ckpt")))
  if others:
    _fail(path, f"holds {', '.join(others)} but no {WEIGHTS_FILE}: this project reads "
                f"safetensors (numpy, no torch); {CONVERT_HINT}")
  _fail(path, f"has no {WEIGHTS_FILE} (nor {INDEX_FILE})")
  return []


def open_folder(path: str) -> HfFolder:
  """The folder's config, family and tensor list; no tensor is read."""
  if not os.path.isdir(path):
    _fail(path, "is not a directory")
  config_path = os.path.join(path, CONFIG_FILE)
  if not os.path.isfile(config_path):
    _fail(path, f"has no {CONFIG_FILE}")
  try:
    with open(config_path, encoding="utf-8") as f:
      config = json.load(f)
  except (OSError, ValueError) as e:
    _fail(path, f"has an unreadable {CONFIG_FILE}: {' '.join(str(e).split())}")
  model_type = config.get("model_type") if isinstance(config, dict) else None
  if model_type not in FAMILIES:
    architectures = ", ".join(config.get("architectures") or []) if isinstance(config, dict) \
        else ""
    _fail(path, f"is a {model_type!r} model{f' ({architectures})' if architectures else ''}; "
                f"supported: {', '.join(FAMILIES)} (GPT2LMHeadModel, BertForPreTraining, "
                "BertModel)")
  files, shapes, dtypes = {}, {}, {}
  for file in _weight_files(path):
    try:
      with safe_open(file, framework="numpy") as f:
        for name in f.keys():
          tensor = f.get_slice(name)
          files[name], shapes[name] = file, tuple(tensor.get_shape())
          dtypes[name] = tensor.get_dtype()
    except Exception as e:  # pylint: disable=broad-except  (safetensors raises its own)
      _fail(path, f"has an unreadable {os.path.basename(file)}: {' '.join(str(e).split())}")
  return HfFolder(path, config, FAMILIES[model_type], files, shapes, dtypes)
