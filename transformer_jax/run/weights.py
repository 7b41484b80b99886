"""The parameters a mode works with: the workdir's own checkpoint, or the weights that
train.init_from names, and int8 where model.quantize says so.

Training resumes the workdir's latest checkpoint or starts at step 0 (`initial_state`:
a warm start's parameters where it has them, fresh ones elsewhere). The modes that do
not train (`inference_state`) take the workdir's latest checkpoint; a workdir without
one (or no workdir: `transformer_jax.load` of weights alone) takes train.init_from's
weights as a warm start would, so eval, sample, translate, attention, predict and export
work on weights that were never trained here.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import jax.numpy as jnp
from absl import logging

from transformer_jax.adapters import finetune
from transformer_jax.errors import CheckpointError, CheckpointMismatchError
from transformer_jax.quantization import int8
from transformer_jax.run.task import Task
from transformer_jax.training import checkpointing, warm_start
from transformer_jax.training.train_state import TrainState


def restore(task: Task, params_only: bool = False):
  """The workdir's latest checkpoint, or None; a mismatch names the tokenizer file when
  one was given, and an adapter's base when that differs."""
  if task.workdir is None or not checkpointing.saved_steps(task.workdir):
    return None  # Nothing to restore, and nothing made: the checkpointer creates its folder.
  try:
    return task.trainer.restore(params_only=params_only)
  except CheckpointMismatchError as e:
    from_tokenizer = any(section == "tokenizer" for section, _ in e.differences)
    if any(section == "base" for section, _ in e.differences):
      raise CheckpointError(f"{task.trainer.checkpointer.directory} holds adapters trained on "
                            f"another base than train.init_from={task.cfg.train.init_from} "
                            "(their fingerprints differ)") from e
    if task.cfg.data.tokenizer_path and from_tokenizer:
      raise CheckpointError(f"tokenizer file {task.cfg.data.tokenizer_path} does not match "
                            f"the checkpoint: {e}") from e
    raise


def _warm_params(task: Task) -> Optional[Any]:
  if task.warm_start is None:
    return None
  task.warm_start.log()
  return warm_start.load(task.warm_start, task.trainer.abstract_state.params)


def _with_prompt(task: Task, params) -> Any:
  """A soft prompt starts from the base's embeddings (finetune.method=prompt)."""
  if task.cfg.finetune.method != "prompt" or task.warm_start is None:
    return params
  return finetune.initial_prompt(params, task.cfg.finetune, task.tokenizer,
                                 task.cfg.train.seed)


def initial_state(task: Task):
  """Step 0: the warm start's parameters where it has them, fresh ones elsewhere, and a
  fresh optimizer state."""
  state = task.trainer.initial_state(_warm_params(task))
  return state.replace(params=_with_prompt(task, state.params))


def restored_state(task: Task):
  """The parameters (and step) the modes that do not train read: the workdir's latest
  checkpoint, else train.init_from's weights (a state whose opt_state is None)."""
  state = restore(task, params_only=True)
  if state is not None:
    return state
  if task.warm_start is None:
    where = (f"no checkpoint in {os.path.join(task.workdir, checkpointing.DIRECTORY)}"
             if task.workdir is not None else "no weights")
    raise CheckpointError(f"{where}: train first (--mode=train), or name trained weights "
                          "with --config.train.init_from")
  params = _with_prompt(task, task.trainer.initial_params(_warm_params(task)))
  return TrainState(step=jnp.asarray(task.warm_start.step, jnp.int32), params=params,
                    opt_state=None)


def inference_state(task: Task) -> tuple[Any, int]:
  """(parameters, step) for the modes that do not train (`restored_state`); int8
  (quantised after the restore, from any float checkpoint) with model.quantize=int8."""
  state = restored_state(task)
  params = state.params
  if isinstance(task.model, int8.Int8Model):
    params = task.model.quantize(params)
    logging.info("model.quantize=int8: %s bytes of parameters, %.1f%% of the float32 %s",
                 f"{int8.tree_bytes(params):,}",
                 100 * int8.tree_bytes(params) / int8.tree_bytes(state.params),
                 f"{int8.tree_bytes(state.params):,}")
  return params, int(state.step)


def inference_params(task: Task) -> Any:
  """The parameters of `inference_state`."""
  return inference_state(task)[0]

