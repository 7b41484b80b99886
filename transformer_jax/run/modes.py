"""What launch.py's flags give a mode, and the mode checks the experiments share."""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

from absl import logging

from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class ModeInputs:
  """What launch.py's flags give a mode besides the config: text in and out."""
  prompt: Optional[str] = None  # --prompt (clm, sft sample).
  prompts_file: Optional[str] = None  # --prompts_file (clm sample): one prompt a line.
  # --input: translate and predict, a file or '-' (stdin); attention, the text itself.
  input_path: Optional[str] = None
  # --output: translate and predict, a file (None is stdout); attention and export, a
  # directory.
  output_path: Optional[str] = None
  format: Optional[str] = None  # --format (export): hf, native or peft.
  # --mode=lm_eval (lm-evaluation-harness): task names, a folder of task YAMLs, few-shot
  # examples and a limit per task (a count, or a fraction below 1).
  tasks: Optional[str] = None
  include_path: Optional[str] = None
  num_fewshot: Optional[int] = None
  limit: Optional[float] = None


def unavailable(experiment: str, mode: str, modes: tuple[str, ...]) -> UserError:
  """The error for a mode the experiment does not offer, listing those it does."""
  offered = ", ".join(modes[:-1]) + f" or {modes[-1]}"
  return UserError(f"--mode={mode} is not available for experiment {experiment}: use "
                   f"{offered}")


def new_output_directory(inputs: ModeInputs, mode: str = "export") -> str:
  """--output for a mode that writes a directory: given, and new or empty (nothing is
  overwritten)."""
  directory = inputs.output_path
  if not directory:
    raise UserError(f"--mode={mode} needs --output=DIR (a new or empty directory)")
  if os.path.exists(directory) and (not os.path.isdir(directory) or os.listdir(directory)):
    raise UserError(f"--output={directory} exists and is not an empty directory; nothing is "
                    "overwritten: choose a new one")
  return directory


def attention_inputs(cfg: ExperimentConfig, inputs: ModeInputs) -> tuple[ExperimentConfig,
                                                                       str, str]:
  """--mode=attention: (the config with plain attention, the only kind that returns its
  weights, and the same parameters; --input's text; the --output directory)."""
  if not inputs.input_path:
    raise UserError("--mode=attention needs --input=TEXT (the text whose attention to draw)")
  if not inputs.output_path:
    raise UserError("--mode=attention needs --output=DIR (one PNG per layer goes there)")
  if cfg.model.attention_impl != "plain":
    logging.info("--mode=attention: model.attention_impl=plain (fused attention returns no "
                 "weights; the parameters are the same)")
  model = dataclasses.replace(cfg.model, attention_impl="plain")
  return dataclasses.replace(cfg, model=model), inputs.input_path, inputs.output_path
