"""Where weights come from: one protocol for every kind of source, and this project's checkpoints.

A source answers the same questions whatever it is: a name for messages, the step its
weights are from, the folder its tokenizer file lies in, the fingerprint of that
tokenizer when the source recorded one, the signatures of the parameters it provides
('float32[64, 32]' by path), and those parameters, read into the shardings asked for.
Warm starts (`warm_start.py`), `transformer_jax.load` and the read-only modes take a
source; `transformer_jax/run/sources.py` opens the kind a `train.init_from` value names:
`CheckpointSource` (a workdir, DIR@STEP), `interop.hf_source.HfSource` (hf:DIR) or
`interop.native_export.NativeSource` (a folder of `--mode=export`).
"""

from __future__ import annotations

import os
from typing import Any, Optional, Protocol

from transformer_jax import parameter_paths
from transformer_jax.errors import CheckpointError
from transformer_jax.training import checkpointing


class WeightsSource(Protocol):
  """What a warm start, `load` and the read-only modes ask of weights."""
  name: str  # For messages: the workdir, hf:DIR, the exported folder.
  step: int  # The training step the weights are from (0 when unknown).
  directory: str  # The folder holding the source's tokenizer file.
  tokenizer_fingerprint: Optional[dict]  # As checkpoints record it, when the source did.

  def signatures(self) -> dict[str, str]:
    """{parameter path: 'float32[...]'} of every parameter the source provides."""

  def read(self, abstract_params) -> Any:
    """The parameters at the paths of `abstract_params` (a subset of `signatures`, shapes
    with shardings attached), bit-exact where the source is float32, in those shardings."""


class CheckpointSource:
  """A workdir's checkpoint: the latest, or `step` (train.init_from=DIR or DIR@STEP)."""

  def __init__(self, workdir: str, step: Optional[int] = None):
    directory = os.path.join(workdir, checkpointing.DIRECTORY)
    if not os.path.isdir(directory):
      raise CheckpointError(f"config.train.init_from: {workdir} has no checkpoints "
                            f"({directory} does not exist)")
    self._checkpointer = checkpointing.Checkpointer(workdir, keep=1, read_only=True)
    steps = self._checkpointer.all_steps()
    if not steps:
      raise CheckpointError(f"config.train.init_from: {directory} holds no checkpoint")
    if step is not None and step not in steps:
      raise CheckpointError(f"config.train.init_from: {directory} has no step {step}; it has "
                            f"{', '.join(map(str, steps))}")
    self.name = self.directory = workdir
    self.step = steps[-1] if step is None else step
    self._metadata, tree = self._checkpointer.read_metadata(self.step)
    self._signatures = checkpointing.parameter_signatures(tree["params"])
    self.tokenizer_fingerprint = self._metadata.get("tokenizer")

  @property
  def metadata(self) -> dict:
    """The checkpoint's JSON metadata (model and finetune sections, the base's fingerprint)."""
    return self._metadata

  def signatures(self) -> dict[str, str]:
    return dict(self._signatures)

  def read(self, abstract_params) -> Any:
    return self._checkpointer.restore_params(self.step, abstract_params)


def subset(abstract_params, paths) -> dict:
  """The nested tree of `abstract_params` at `paths` only."""
  flat = parameter_paths.flat(abstract_params)
  return parameter_paths.nested({path: flat[path] for path in paths})
