"""A Hugging Face GPT-2 or BERT folder as a weights source (`train.init_from=hf:DIR`).

It answers what every source answers (`training/weights_source.py`): the folder is
opened and checked against the run's model and experiment when the source is made
(`hf_import.check`: every problem at once, one line each), the signatures are those of
the parameters its tensors convert to, and `read` converts them (float32, bit-exact for
float32 tensors) into the shardings asked for. Its tokenizer is the folder's
`tokenizer.json`; it records no fingerprint, so the run layer compares the tokenizer's
size with the weights' vocabulary instead (in `hf_import.check`).
"""

from __future__ import annotations

from typing import Any, Sequence

import jax

from transformer_jax import parameter_paths
from transformer_jax.config_sections import ModelConfig
from transformer_jax.interop import hf_folder, hf_import


class HfSource:
  """hf:DIR for a model of `model`'s shape in experiment `experiment`.

  fresh_allowed: parameter patterns that may start fresh when the folder lacks them (a
  task head, train.init_unmatched).
  """

  def __init__(self, path: str, model: ModelConfig, experiment: str,
               fresh_allowed: Sequence[str] = ()):
    self.folder = hf_folder.open_folder(path)
    self.model = model
    self.name = self.folder.name
    self.directory = path
    self.step = 0
    self.tokenizer_fingerprint = None
    self._signatures = hf_import.check(self.folder, model, experiment, fresh_allowed)

  def signatures(self) -> dict[str, str]:
    return dict(self._signatures)

  def read(self, abstract_params) -> Any:
    wanted = parameter_paths.flat(abstract_params)
    arrays = hf_import.read(self.folder, self.model, wanted)
    return parameter_paths.nested({path: jax.device_put(arrays[path], wanted[path].sharding)
                                   for path in wanted})
