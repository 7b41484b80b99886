"""--mode=train for every experiment: the checks, the lock, the workdir's files, the loop.

Resumes the workdir's latest checkpoint or starts at step 0 (a warm start where
train.init_from names weights), trains to train.num_steps and evaluates at the end
(also when already there). Holds the workdir's training lock throughout: one training
run per workdir (`training/workdir_lock.py`).
"""

from __future__ import annotations

import os
from typing import Callable, Optional

from absl import logging

from transformer_jax.errors import ConfigError
from transformer_jax.run import compilation_cache, weights, workdir_files
from transformer_jax.run.task import Task
from transformer_jax.training import distributed, workdir_lock
from transformer_jax.training.loop import MoreMetrics, TrainResult, format_metrics


def check_trainable(task: Task) -> None:
  """What no training run may be, checked before anything is written."""
  cfg = task.cfg
  if cfg.model.quantize != "none":
    raise ConfigError("model.quantize", f"{cfg.model.quantize} is for inference (eval, "
                      "sample, translate, attention, export), not training; set it to none")
  method = cfg.finetune.method
  if method not in ("full", "head") and not cfg.train.init_from:
    raise ConfigError("train.init_from", f"finetune.method={method} adapts a base model: "
                      "name the base's workdir")
  if cfg.model.dtype == "float16":
    raise ConfigError("model.dtype", "float16 trains only with loss scaling, which this "
                      "codebase does not do: train in bfloat16 (float16 is fine for eval and "
                      "decoding)")


def train(task: Task, tokens_per_step: int, more_metrics: Optional[MoreMetrics] = None,
          on_start: Optional[Callable[[], None]] = None) -> Optional[TrainResult]:
  """Resumes or starts, trains to train.num_steps; None if interrupted by a signal.

  more_metrics(params): metrics added to every evaluation (see Trainer.train).
  on_start(): writes the experiment's own files (a classifier's labels) beside
  config.json and the tokenizer, once the run holds the workdir.
  """
  check_trainable(task)
  os.makedirs(task.workdir, exist_ok=True)  # Every check that writes nothing has passed.
  with workdir_lock.WorkdirLock(task.workdir, enabled=distributed.is_main_process()):
    return _train_locked(task, tokens_per_step, more_metrics, on_start)


def _train_locked(task: Task, tokens_per_step: int, more_metrics: Optional[MoreMetrics],
                  on_start: Optional[Callable[[], None]]) -> Optional[TrainResult]:
  state = weights.restore(task)  # Raises before anything is written on a mismatch.
  if state is None:
    state = weights.initial_state(task)
  elif task.cfg.train.init_from:
    logging.info("resuming: train.init_from=%s started this run and is not read again",
                 task.cfg.train.init_from)
  if distributed.is_main_process():  # Every process holds the same; one writes it.
    workdir_files.write(task.workdir, task.cfg, task.tokenizer)
    if on_start is not None:
      on_start()
  compilation_cache.log_location()
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
