"""`transformer_jax.load`: a trained model, from any folder it lives in, ready for Python.

  load("runs/clm")           a workdir: its config.json and latest checkpoint (an adapter
                             run also reads its base, train.init_from in its config.json)
  load("runs/clm@4000")      a workdir's checkpoint of that step
  load("runs/clm-export")    a folder of --mode=export (native format)
  load("hf:/models/gpt2")    a Hugging Face GPT-2 or BERT folder (also without hf:): the
                             shape and tokenizer from its files, the rest from the library's
                             defaults (default_config.py)
Overrides are config fields by dotted name, validated as launch.py validates them:
`load("runs/clm", **{"model.quantize": "int8"})`, or with "__" for the dot:
`load("runs/clm", model__quantize="int8")`. Every problem a user can cause is one
UserError line, as launch.py says it.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import ml_collections
from absl import logging

from transformer_jax import config_overrides, configuration, default_config, tasks
from transformer_jax.config_choices import HF_PREFIX
from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.errors import CheckpointError, UserError
from transformer_jax.interop import hf_folder, native_export
from transformer_jax.run import compilation_cache, source_config, weights, workdir_files
from transformer_jax.tasks.loaded_model import LoadedModel
from transformer_jax.training import checkpointing, partitioning


def _hf_config(path: str, overrides: dict[str, Any]) -> ml_collections.ConfigDict:
  folder = hf_folder.open_folder(path)
  config = default_config.base()
  config.experiment = folder.family.EXPERIMENT
  config.train.init_from = f"{HF_PREFIX}{path}"
  config_overrides.apply(config, overrides)
  source_config.adopt(config, explicit=overrides)
  return config


def _is_hf(path: str) -> bool:
  config = workdir_files.read_config(path)
  return config is not None and "model_type" in config


def resolve(path: str, overrides: dict[str, Any]) -> tuple[ml_collections.ConfigDict,
                                                           Optional[str]]:
  """(the config to validate, the workdir or None) of what `path` names."""
  if path.startswith(HF_PREFIX):
    return _hf_config(path[len(HF_PREFIX):], overrides), None
  directory, at, step = path.rpartition("@")
  if not at or not step.isdigit():
    directory, step = path, ""
  if not os.path.isdir(directory):
    raise UserError(f"{directory} does not exist or is not a directory")
  if _is_hf(directory):
    return _hf_config(directory, overrides), None
  saved = workdir_files.read_config(directory)
  has_checkpoints = os.path.isdir(os.path.join(directory, checkpointing.DIRECTORY))
  if saved is None or not (has_checkpoints or native_export.is_export(directory)):
    raise UserError(f"{directory} is neither a workdir (config.json and checkpoints/), a "
                    f"folder of --mode=export (config.json and {native_export.WEIGHTS_FILE}) "
                    "nor a Hugging Face folder (config.json with a model_type)")
  config = config_overrides.config_dict(saved)
  if config.finetune.method != "full":  # The method chooses what trains (re-derived).
    config.train.trainable = ".*"
  workdir: Optional[str] = directory
  if step or not has_checkpoints:  # Weights alone: read as a warm start reads them.
    if step and config.finetune.method not in ("full", "head") and config.train.init_from:
      raise UserError(f"{path}: a checkpoint of an adapter run holds the adapter alone; "
                      f"load the workdir's latest ({directory}) or export it first")
    config.train.init_from, workdir = path, None
  config_overrides.apply(config, overrides)
  base = config.train.init_from
  if workdir is not None and base and not base.startswith(HF_PREFIX):
    base_directory = base.rpartition("@")[0] if "@" in base else base
    if not os.path.isdir(base_directory):
      raise UserError(f"{directory} adapts the base train.init_from={base}, which is not "
                      "there (run from the folder it was trained in, or pass "
                      "train.init_from=DIR)")
  return config, workdir


def _configure_devices(cfg: ExperimentConfig) -> None:
  """mesh.num_cpu_devices, when JAX has not started yet (else the devices it has)."""
  try:
    partitioning.configure_cpu_devices(cfg.mesh)
  except RuntimeError:
    logging.warning("JAX has started already: mesh.num_cpu_devices=%d does not apply; the "
                    "mesh uses the devices there are", cfg.mesh.num_cpu_devices)


def load(path: str, **overrides) -> LoadedModel:
  """The model `path` names, with its tokenizer and parameters (see the module docstring)."""
  overrides = {name.replace("__", "."): value for name, value in overrides.items()}
  config, workdir = resolve(str(path), overrides)
  cfg = configuration.validate(config)
  compilation_cache.enable()
  _configure_devices(cfg)
  try:
    task = tasks.get(cfg.experiment).build_task(cfg, workdir, need_data=False)
  except CheckpointError as e:
    raise CheckpointError(f"{path}: {e}") from e
  params, step = weights.inference_state(task)
  logging.info("loaded %s: experiment %s, step %d", path, cfg.experiment, step)
  return LoadedModel(task, params, step, name=str(path))
