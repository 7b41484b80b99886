"""train.init_from=hf:DIR: a Hugging Face GPT-2 or BERT folder's weights start a run.

`check` runs before anything is written and says everything that is wrong at once,
one line per problem, in one CheckpointError:
  - the folder's family is not the experiment's (GPT-2 is clm's, BERT is mlm's);
  - config.json implies another model than the run's config: one line per field, written
    as the flag that fixes it (--config.model.activation=gelu_tanh), and the tokenizer's
    size against the weights' vocabulary;
  - tensors: one line per mis-shaped tensor, per tensor the name table does not use,
    per missing tensor (unless its parameters are ones the experiment or
    train.init_unmatched allows to start fresh), per tied copy that differs.
It returns the signatures of the parameters the folder provides, which the warm start
compares with the model like a checkpoint's; `read` converts them (float32, bit-exact
for float32 tensors).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from transformer_jax.config_sections import ModelConfig
from transformer_jax.errors import CheckpointError
from transformer_jax.interop.hf_folder import HfFolder
from transformer_jax.interop.hf_tables import Rule
from transformer_jax import parameter_paths

MAX_LINES = 20


def _prefix(folder: HfFolder) -> str:
  """The family's model prefix when the folder uses it ('transformer.', 'bert.'), else ''."""
  prefix = folder.family.PREFIX
  return prefix if any(name.startswith(prefix) for name in folder.shapes) else ""


def named_rules(folder: HfFolder, model: ModelConfig) -> dict[str, Rule]:
  """{the folder's tensor name: its rule} for a model of the run's config."""
  prefix = _prefix(folder)
  return {(rule.hf if rule.head else prefix + rule.hf): rule
          for rule in folder.family.rules(model)}


def config_problems(folder: HfFolder, model: ModelConfig, experiment: str) -> list[str]:
  """The lines of the config check (see the module docstring)."""
  family = folder.family
  if family.EXPERIMENT != experiment:
    return [f"it holds a {family.MODEL_TYPE} model, which experiment {experiment} cannot load "
            f"(use configs/{family.EXPERIMENT}.py)"]
  try:
    fields, problems = family.model_fields(folder.config)
  except KeyError as e:
    return [f"its config.json lacks {e.args[0]!r}"]
  lines = [f"config.json has {problem}: not supported" for problem in problems]
  for field, value in fields.items():
    have = getattr(model, field)
    if field == "vocab_size":
      if have != value:
        lines.append(f"the tokenizer has {have} tokens but the weights' vocabulary has "
                     f"{value} (config.json vocab_size): use the folder's own tokenizer.json")
    elif field == "num_kv_heads":
      if have not in (0, model.num_heads):
        lines.append("--config.model.num_kv_heads=0 (config.json: one key/value head per "
                     f"head; this run has {have})")
    elif have != value and not (isinstance(value, float) and np.isclose(have, value,
                                                                          rtol=1e-9)):
      lines.append(f"--config.model.{field}={value} (config.json; this run has "
                   f"{have})")
  return lines


def tensor_problems(folder: HfFolder, rules: dict[str, Rule],
                    fresh_allowed: Sequence[str]) -> list[str]:
  """The lines of the tensor check (see the module docstring)."""
  family, prefix = folder.family, _prefix(folder)
  lines = []
  for name, rule in rules.items():
    if name not in folder.shapes:
      if len(parameter_paths.matching(rule.ours, fresh_allowed)) < len(rule.ours):
        lines.append(f"missing tensor {name} (for {', '.join(rule.ours)})")
    elif folder.shapes[name] != rule.shape:
      lines.append(f"tensor {name} is {list(folder.shapes[name])} in {folder.name} but this "
                   f"model needs {list(rule.shape)}")
  for name in sorted(folder.shapes):
    bare = name[len(prefix):] if prefix and name.startswith(prefix) else name
    if name in rules or family.BUFFERS.fullmatch(bare):
      continue
    if name in family.TIED:
      target = family.TIED[name]
      target = target if target in folder.shapes else prefix + target
      if target in folder.shapes and not np.array_equal(folder.read(name), folder.read(target)):
        lines.append(f"tensor {name} differs from {target}: untied copies are not supported")
      continue
    lines.append(f"unused tensor {name} {list(folder.shapes[name])}")
  return lines


def check(folder: HfFolder, model: ModelConfig, experiment: str,
          fresh_allowed: Sequence[str]) -> dict[str, str]:
  """{parameter path: 'float32[...]'} of what the folder provides; raises one
  CheckpointError listing every problem, one a line."""
  lines = config_problems(folder, model, experiment)
  if not lines:
    rules = named_rules(folder, model)
    lines = tensor_problems(folder, rules, fresh_allowed)
  if lines:
    shown = lines[:MAX_LINES] + ([f"... and {len(lines) - MAX_LINES} more"]
                                 if len(lines) > MAX_LINES else [])
    raise CheckpointError(f"config.train.init_from: {folder.name} does not fit this run "
                          f"({len(lines)} problem{'s' if len(lines) > 1 else ''}):\n  "
                          + "\n  ".join(shown))
  signatures = {}
  for name, rule in rules.items():
    if name in folder.shapes:
      converted = rule.to_ours(np.empty(rule.shape, np.float32))
      signatures.update({path: f"float32{list(array.shape)}"
                         for path, array in zip(rule.ours, converted)})
  return signatures


def read(folder: HfFolder, model: ModelConfig, paths: Iterable[str]) -> dict[str, np.ndarray]:
  """{path: float32 array} for the parameter paths asked for."""
  wanted = set(paths)
  arrays = {}
  for name, rule in named_rules(folder, model).items():
    if name in folder.shapes and wanted & set(rule.ours):
      for path, array in zip(rule.ours, rule.to_ours(folder.read(name))):
        if path in wanted:
          arrays[path] = np.ascontiguousarray(array, np.float32)
  return arrays
