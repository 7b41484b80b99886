"""Warm starts: another run's parameters, and only those, start a new run.

`train.init_from` names a workdir (its latest checkpoint) or DIR@STEP. The new run
gets a fresh optimizer state and starts at step 0 in its own workdir. Parameters
only the new model has are initialised as usual; parameters only the source has
are dropped. The experiment declares which such paths it expects (a classifier:
a new head, no masked-LM head); `train.init_unmatched` allows more; any other
unmatched path, and any path whose shape or dtype differs, stops the run with one
line before anything is written. The source's tokenizer comes along (see
`transformer_jax.data.tokenizer`). `hf:DIR` takes a Hugging Face GPT-2 or BERT folder
instead, checked and converted by `transformer_jax.interop.hf_import`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional

from absl import logging

from transformer_jax import config_choices
from transformer_jax.config_sections import ModelConfig, TrainConfig
from transformer_jax.errors import CheckpointError
from transformer_jax.training import checkpointing, parameter_paths


@dataclasses.dataclass(frozen=True)
class Expected:
  """Unmatched parameter paths an experiment expects of a warm start (regexes)."""
  new: tuple[str, ...] = ()  # Only the new model has them (e.g. a task head).
  dropped: tuple[str, ...] = ()  # Only the source has them (e.g. pretraining heads).


@dataclasses.dataclass(frozen=True)
class WarmStart:
  """What a warm start takes from its source, checked against the new model."""
  workdir: str  # The source run's workdir.
  step: int  # The source checkpoint's step.
  loaded: tuple[str, ...]  # Paths read from the source.
  new: tuple[str, ...]  # Paths initialised fresh.
  dropped: tuple[str, ...]  # Source paths left out.
  tokenizer: Optional[dict]  # The source checkpoint's tokenizer fingerprint.
  model: Optional[ModelConfig] = None  # hf:DIR: the model its tensors are converted for.

  def log(self) -> None:
    logging.info("warm start from %s step %d: %d parameter arrays loaded; new (initialised "
                 "fresh): %s; dropped: %s", self.workdir, self.step, len(self.loaded),
                 ", ".join(self.new) or "none", ", ".join(self.dropped) or "none")


def _source(config: TrainConfig) -> tuple[checkpointing.Checkpointer, int]:
  workdir, step = config.init_source
  directory = os.path.join(workdir, checkpointing.DIRECTORY)
  if not os.path.isdir(directory):
    raise CheckpointError(f"config.train.init_from: {workdir} has no checkpoints "
                          f"({directory} does not exist)")
  source = checkpointing.Checkpointer(workdir, keep=1, read_only=True)
  steps = source.all_steps()
  if not steps:
    raise CheckpointError(f"config.train.init_from: {directory} holds no checkpoint")
  if step is None:
    return source, steps[-1]
  if step not in steps:
    raise CheckpointError(f"config.train.init_from: {directory} has no step {step}; it has "
                          f"{', '.join(map(str, steps))}")
  return source, step


def _unexpected(paths: list[str], patterns: tuple[str, ...]) -> list[str]:
  allowed = parameter_paths.matching(paths, patterns)
  return [path for path in paths if path not in allowed]


def _hf_source(config: TrainConfig, model: ModelConfig, experiment: str,
               expected: Expected) -> tuple[str, dict[str, str]]:
  """(hf:DIR, the signatures of the parameters the folder provides), checked."""
  from transformer_jax.interop import hf_folder, hf_import  # pylint: disable=import-outside-toplevel
  folder = hf_folder.open_folder(config.init_from_hf)
  allowed = expected.new + config_choices.patterns(config.init_unmatched)
  return folder.name, hf_import.check(folder, model, experiment, allowed)


def plan(config: TrainConfig, abstract_params, expected: Expected,
         model: Optional[ModelConfig] = None, experiment: str = "") -> WarmStart:
  """Compares the source checkpoint's parameters with the new model's (shapes only: the
  source's metadata is read, no array). Raises a one-line UserError on a mismatch.
  model and experiment: the run's, for hf:DIR (whose config.json is checked against them)."""
  workdir = config.init_source[0]
  if config.init_from_hf is not None:
    workdir, saved = _hf_source(config, model, experiment, expected)
    step, metadata = 0, {}
  else:
    source, step = _source(config)
    metadata, tree = source.read_metadata(step)
    saved = checkpointing.parameter_signatures(tree["params"])
  wanted = checkpointing.parameter_signatures(abstract_params)
  for path in sorted(set(saved) & set(wanted)):
    if saved[path] != wanted[path]:
      raise CheckpointError(f"config.train.init_from: parameter {path} is {saved[path]} in "
                            f"{workdir} but {wanted[path]} in this model")
  allowed = config_choices.patterns(config.init_unmatched)
  new = sorted(set(wanted) - set(saved))
  dropped = sorted(set(saved) - set(wanted))
  for paths, kind, patterns in ((new, "only this model has", expected.new),
                                (dropped, f"only {workdir} has", expected.dropped)):
    unexpected = _unexpected(paths, patterns + allowed)
    if unexpected:
      shown = ", ".join(unexpected[:4]) + (f" and {len(unexpected) - 4} more"
                                           if len(unexpected) > 4 else "")
      raise CheckpointError(f"config.train.init_from: parameters {kind}: {shown}; allow "
                            "them with train.init_unmatched (comma-separated regexes)")
  return WarmStart(workdir=workdir, step=step,
                   loaded=tuple(sorted(set(saved) & set(wanted))), new=tuple(new),
                   dropped=tuple(dropped), tokenizer=metadata.get("tokenizer"),
                   model=model if config.init_from_hf is not None else None)


def load(start: WarmStart, abstract_params) -> Any:
  """The source's parameters at `start.loaded`, bit-exact, in the shardings attached to
  `abstract_params` (the new model's shapes)."""
  wanted = parameter_paths.flat(abstract_params)
  if start.model is not None:  # hf:DIR
    import jax  # pylint: disable=import-outside-toplevel
    from transformer_jax.interop import hf_folder, hf_import  # pylint: disable=import-outside-toplevel
    folder = hf_folder.open_folder(start.workdir[len(config_choices.HF_PREFIX):])
    arrays = hf_import.read(folder, start.model, start.loaded)
    return parameter_paths.nested({path: jax.device_put(arrays[path], wanted[path].sharding)
                                   for path in start.loaded})
  subset = parameter_paths.nested({path: wanted[path] for path in start.loaded})
  source = checkpointing.Checkpointer(start.workdir, keep=1, read_only=True)
  return source.restore_params(start.step, subset)
