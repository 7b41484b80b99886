"""The weights `train.init_from` names, opened as a source (`training/weights_source.py`).

  DIR, DIR@STEP  a workdir's latest checkpoint, or that step's (CheckpointSource)
  DIR            a folder written by --mode=export (native, float32): NativeSource
  hf:DIR         a Hugging Face GPT-2 or BERT folder: HfSource, checked against the run
"""

from __future__ import annotations

import os
from typing import Sequence

from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.errors import CheckpointError, DataError
from transformer_jax.interop import native_export
from transformer_jax.interop.hf_source import HfSource
from transformer_jax.training import checkpointing
from transformer_jax.training.weights_source import CheckpointSource, WeightsSource


def open_source(cfg: ExperimentConfig, fresh_allowed: Sequence[str] = ()) -> WeightsSource:
  """train.init_from's weights for a model of cfg.model (vocab_size known).
  fresh_allowed: parameter patterns a Hugging Face folder may lack (a task head)."""
  directory, step = cfg.train.init_source
  if cfg.train.init_from_hf is not None:
    return HfSource(directory, cfg.model, cfg.experiment, fresh_allowed)
  if not os.path.isdir(directory):
    raise DataError(f"config.train.init_from: {directory} is not a directory")
  has_checkpoints = os.path.isdir(os.path.join(directory, checkpointing.DIRECTORY))
  if native_export.is_export(directory) and not has_checkpoints:
    if step is not None:
      raise CheckpointError(f"config.train.init_from: {directory} is an exported folder, "
                            f"which holds one set of weights, not step {step}")
    return native_export.NativeSource(directory)
  return CheckpointSource(directory, step)
