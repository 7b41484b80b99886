"""What every experiment does with a workdir: build the trainer, restore, train, evaluate.

An experiment (clm, mlm, seq2seq) supplies its data, model and objective; this
module turns them into a `Trainer` whose checkpoints record the model shape and
the tokenizer, and runs the `train` and `eval` modes the same way for all.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
from absl import logging

from transformer_jax import configuration
from transformer_jax.configuration import ExperimentConfig, ModelConfig
from transformer_jax.data import lm_data
from transformer_jax.errors import CheckpointError, CheckpointMismatchError
from transformer_jax.training import partitioning, workdir_lock
from transformer_jax.training.loop import MoreMetrics, Trainer, TrainResult, format_metrics
from transformer_jax.training.metrics_writer import MetricsWriter

CONFIG_FILE = "config.json"


@dataclasses.dataclass(frozen=True)
class ModeInputs:
  """What launch.py's flags give a mode besides the config: text in and out."""
  prompt: Optional[str] = None  # --prompt (clm sample).
  prompts_file: Optional[str] = None  # --prompts_file (clm sample): one prompt a line.
  input_path: Optional[str] = None  # --input (seq2seq translate): a file or '-' (stdin).
  output_path: Optional[str] = None  # --output (seq2seq translate): None is stdout.


@dataclasses.dataclass
class Task:
  """Everything the modes share, built once from the config and the workdir."""
  cfg: ExperimentConfig  # model.vocab_size filled in from the tokenizer.
  tokenizer: lm_data.Tokenizer
  model: nn.Module
  data: Any  # Has train_batch_at(step) and eval_batches(); None when only decoding.
  trainer: Trainer


def saved_tokenizer(cfg: ExperimentConfig, workdir: str) -> lm_data.Tokenizer:
  """The tokenizer a trained workdir holds (for modes that need no data)."""
  path = lm_data.tokenizer_path(workdir, cfg.data.tokenizer)
  if not os.path.exists(path):
    raise CheckpointError(f"{workdir} has no {os.path.basename(path)}: "
                          "train a model there first")
  return lm_data.load_tokenizer(cfg.data.tokenizer, path)


def build(cfg: ExperimentConfig, workdir: str, *, data: Any,
          make_model: Callable[[ModelConfig], nn.Module],
          make_objective: Callable[[nn.Module], Any],
          example_lengths: tuple[int, ...]) -> Task:
  """data: the task's data (its tokenizer is the model's), or None to decode only, with
  the workdir's saved tokenizer. example_lengths: one int32 [1, length] argument per
  positional model input.
  """
  tokenizer = data.tokenizer if data is not None else saved_tokenizer(cfg, workdir)
  model_cfg = dataclasses.replace(cfg.model, vocab_size=tokenizer.vocab_size)
  cfg = dataclasses.replace(cfg, model=model_cfg)
  mesh = partitioning.make_mesh(cfg.mesh, cfg.train.batch_size)
  if cfg.eval.batch_size % mesh.devices.size:
    raise configuration.ConfigError(
        "eval.batch_size", f"{cfg.eval.batch_size} is not divisible by the "
        f"{mesh.devices.size} data-parallel devices")
  os.makedirs(workdir, exist_ok=True)  # Only once the data and config have been checked.
  model = make_model(model_cfg)
  examples = [jnp.zeros((1, length), jnp.int32) for length in example_lengths]
  init_params = lambda key: model.init(key, *examples, deterministic=True)["params"]
  metadata = {"model": dataclasses.asdict(model_cfg),
              "tokenizer": lm_data.tokenizer_fingerprint(tokenizer)}
  trainer = Trainer(objective=make_objective(model), init_params=init_params,
                    config=cfg.train, mesh=mesh, workdir=workdir, checkpoint_metadata=metadata)
  return Task(cfg, tokenizer, model, data, trainer)


def restore(task: Task):
  """Latest checkpoint or None; a mismatch names the tokenizer file when one was given."""
  try:
    return task.trainer.restore()
  except CheckpointMismatchError as e:
    from_tokenizer = any(section == "tokenizer" or key == "vocab_size"
                         for section, key in e.differences)
    if task.cfg.data.tokenizer_path and from_tokenizer:
      raise CheckpointError(f"tokenizer file {task.cfg.data.tokenizer_path} does not match "
                            f"the checkpoint: {e}") from e
    raise


def restored_state(task: Task):
  state = restore(task)
  if state is None:
    raise CheckpointError(f"no checkpoint in {task.trainer.checkpointer.directory}: "
                          "train first (--mode=train)")
  return state


def train(task: Task, workdir: str, tokens_per_step: int,
          more_metrics: Optional[MoreMetrics] = None) -> Optional[TrainResult]:
  """Resumes or starts, trains to train.num_steps; None if interrupted by a signal.

  more_metrics(params): metrics added to every evaluation (see Trainer.train). Holds the
  workdir's training lock throughout: one training run per workdir (see workdir_lock).
  """
  with workdir_lock.WorkdirLock(workdir, enabled=jax.process_index() == 0):
    return _train_locked(task, workdir, tokens_per_step, more_metrics)


def _train_locked(task: Task, workdir: str, tokens_per_step: int,
                  more_metrics: Optional[MoreMetrics]) -> Optional[TrainResult]:
  state = restore(task)  # Raises before anything is written on a mismatch.
  if state is None:
    state = task.trainer.initial_state()
  lm_data.save_tokenizer(task.tokenizer, workdir)
  with open(os.path.join(workdir, CONFIG_FILE), "w", encoding="utf-8") as f:
    json.dump(configuration.to_dict(task.cfg), f, indent=2)
  result = task.trainer.train(state, batch_at=task.data.train_batch_at,
                              eval_batches=task.data.eval_batches,
                              tokens_per_step=tokens_per_step, more_metrics=more_metrics)
  if result.interrupted:
    return None
  if not result.last_eval:
    result.last_eval = task.trainer.evaluate(result.state.params, task.data.eval_batches(),
                                             more_metrics)
    logging.info("already trained to train.num_steps")
  logging.info("step %d: %s", int(result.state.step), format_metrics(result.last_eval))
  return result


def record_evaluation(workdir: str, step: int, metrics: dict[str, float]) -> None:
  """Appends to metrics.jsonl and prints one line."""
  writer = MetricsWriter(workdir, enable_tensorboard=False)
  writer.write(step, metrics)
  writer.close()
  print(f"step {step} | {format_metrics(metrics)}")


def evaluate(task: Task, workdir: str) -> dict[str, float]:
  """--mode=eval: the latest checkpoint on the evaluation batches."""
  state = restored_state(task)
  metrics = task.trainer.evaluate(state.params, task.data.eval_batches())
  record_evaluation(workdir, int(state.step), metrics)
  return metrics
