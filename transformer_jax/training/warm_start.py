"""Warm starts: another source's parameters, and only those, start a new run.

`train.init_from` names the source (`weights_source.py`: a workdir, DIR@STEP, hf:DIR or
an exported folder). The new run gets a fresh optimizer state and starts at step 0 in
its own workdir. Parameters only the new model has are initialised as usual;
parameters only the source has are dropped. The experiment declares which such paths
it expects (a classifier: a new head, no masked-LM head); `train.init_unmatched` allows
more; any other unmatched path, and any path whose shape or dtype differs, stops the
run with one line before anything is written. The source's tokenizer comes along (the
run layer reads it, `transformer_jax/run/tokenizers.py`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from absl import logging

from transformer_jax import parameter_paths
from transformer_jax.errors import CheckpointError
from transformer_jax.training import checkpointing
from transformer_jax.training.weights_source import WeightsSource, subset


@dataclasses.dataclass(frozen=True)
class Expected:
  """Unmatched parameter paths an experiment expects of a warm start (regexes)."""
  new: tuple[str, ...] = ()  # Only the new model has them (e.g. a task head).
  dropped: tuple[str, ...] = ()  # Only the source has them (e.g. pretraining heads).


@dataclasses.dataclass(frozen=True)
class WarmStart:
  """What a warm start takes from its source, checked against the new model."""
  source: WeightsSource
  loaded: tuple[str, ...]  # Paths read from the source.
  new: tuple[str, ...]  # Paths initialised fresh.
  dropped: tuple[str, ...]  # Source paths left out.

  @property
  def step(self) -> int:
    return self.source.step

  @property
  def tokenizer(self) -> Optional[dict]:
    """The source's tokenizer fingerprint, when it recorded one."""
    return self.source.tokenizer_fingerprint

  def log(self) -> None:
    logging.info("warm start from %s step %d: %d parameter arrays loaded; new (initialised "
                 "fresh): %s; dropped: %s", self.source.name, self.step, len(self.loaded),
                 ", ".join(self.new) or "none", ", ".join(self.dropped) or "none")


def _unexpected(paths: list[str], patterns: tuple[str, ...]) -> list[str]:
  allowed = parameter_paths.matching(paths, patterns)
  return [path for path in paths if path not in allowed]


def plan(source: WeightsSource, abstract_params, expected: Expected,
         allowed: tuple[str, ...] = ()) -> WarmStart:
  """Compares the source's parameters with the new model's (signatures only: no array is
  read). Raises a one-line CheckpointError on a mismatch. allowed: train.init_unmatched's
  patterns."""
  saved = source.signatures()
  wanted = checkpointing.parameter_signatures(abstract_params)
  for path in sorted(set(saved) & set(wanted)):
    if saved[path] != wanted[path]:
      raise CheckpointError(f"config.train.init_from: parameter {path} is {saved[path]} in "
                            f"{source.name} but {wanted[path]} in this model")
  new = sorted(set(wanted) - set(saved))
  dropped = sorted(set(saved) - set(wanted))
  for paths, kind, patterns in ((new, "only this model has", expected.new),
                                (dropped, f"only {source.name} has", expected.dropped)):
    unexpected = _unexpected(paths, patterns + allowed)
    if unexpected:
      shown = ", ".join(unexpected[:4]) + (f" and {len(unexpected) - 4} more"
                                           if len(unexpected) > 4 else "")
      raise CheckpointError(f"config.train.init_from: parameters {kind}: {shown}; allow "
                            "them with train.init_unmatched (comma-separated regexes)")
  return WarmStart(source=source, loaded=tuple(sorted(set(saved) & set(wanted))),
                   new=tuple(new), dropped=tuple(dropped))


def load(start: WarmStart, abstract_params) -> Any:
  """The source's parameters at `start.loaded`, bit-exact, in the shardings attached to
  `abstract_params` (the new model's shapes)."""
  return start.source.read(subset(abstract_params, start.loaded))
