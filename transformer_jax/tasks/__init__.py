"""The experiments (`config.experiment`), one module each, composing the run layer.

  clm       causal LM (GPT): train, eval, sample, attention, export
  mlm       BERT pretraining (masked LM + next-sentence prediction): train, eval,
            attention, export
  seq2seq   translation (encoder-decoder): train, eval, translate, attention, export
  classify  sequence classification: train, eval, predict, export
  sft       supervised fine-tuning of a decoder on prompt/completion pairs: train, eval,
            sample, export
Each module offers `MODES`, `model_spec(cfg)`, `build_task(cfg, workdir, need_data)` and
`run(cfg, workdir, mode, inputs)`; its config rules are in `experiment_rules.py`, so the
config is validated whole before any of this runs. `transformer_jax.load` (loading.py)
builds the same tasks for use in Python.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from transformer_jax.config_choices import EXPERIMENTS
from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.run.modes import ModeInputs


def get(name: str) -> ModuleType:
  """The module of experiment `name` (one of config_choices.EXPERIMENTS, validated)."""
  if name not in EXPERIMENTS:
    raise ValueError(f"no experiment {name!r}; the experiments are {EXPERIMENTS}")
  return importlib.import_module(f"{__name__}.{name}")


def run(cfg: ExperimentConfig, workdir: str, mode: str, inputs: ModeInputs) -> None:
  """Runs `mode` of the experiment the config names."""
  get(cfg.experiment).run(cfg, workdir, mode, inputs)
