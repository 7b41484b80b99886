"""Causal LM task: a GPT on any `data.*` corpus (char or BPE, stream or packed documents).

Modes: `train` (resumes from the workdir's latest checkpoint, evaluates, then
samples), `eval` (validation loss and perplexity of the latest checkpoint) and
`sample` (continues a prompt).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from transformer_jax import configuration
from transformer_jax.configuration import ExperimentConfig
from transformer_jax.data import chunking, lm_data
from transformer_jax.decoding import generate, samplers
from transformer_jax.errors import CheckpointError, CheckpointMismatchError, DataError
from transformer_jax.models.decoder import Decoder
from transformer_jax.objectives.causal_lm import CausalLmObjective
from transformer_jax.training import partitioning
from transformer_jax.training.loop import Trainer
from transformer_jax.training.metrics_writer import MetricsWriter

SAMPLES_FILE = "samples.txt"
CONFIG_FILE = "config.json"


@dataclasses.dataclass
class Task:
  """Everything the modes share, built once from the config and the workdir."""
  cfg: ExperimentConfig
  tokenizer: lm_data.Tokenizer
  model: Decoder
  data: Optional[lm_data.LmData]  # None when sampling: only the tokenizer is needed.
  trainer: Trainer


def build_task(cfg: ExperimentConfig, workdir: str, need_data: bool) -> Task:
  if need_data:
    data = lm_data.build(cfg, workdir)
    tokenizer = data.tokenizer
  else:
    data, path = None, lm_data.tokenizer_path(workdir, cfg.data.tokenizer)
    if not os.path.exists(path):
      raise CheckpointError(f"{workdir} has no {os.path.basename(path)}: "
                            "train a model there first")
    tokenizer = lm_data.load_tokenizer(cfg.data.tokenizer, path)
  model_cfg = dataclasses.replace(cfg.model, vocab_size=tokenizer.vocab_size)
  cfg = dataclasses.replace(cfg, model=model_cfg)
  mesh = partitioning.make_mesh(cfg.mesh, cfg.train.batch_size)
  if cfg.eval.batch_size % mesh.devices.size:
    raise configuration.ConfigError(
        "eval.batch_size", f"{cfg.eval.batch_size} is not divisible by the "
        f"{mesh.devices.size} data-parallel devices")
  os.makedirs(workdir, exist_ok=True)  # Only once the data and config have been checked.
  model = Decoder(model_cfg)
  example = jnp.zeros((1, model_cfg.max_length), jnp.int32)
  init_params = lambda key: model.init(key, example, deterministic=True)["params"]
  metadata = {"model": dataclasses.asdict(model_cfg),
              "tokenizer": lm_data.tokenizer_fingerprint(tokenizer)}
  trainer = Trainer(objective=CausalLmObjective(model), init_params=init_params,
                    config=cfg.train, mesh=mesh, workdir=workdir, checkpoint_metadata=metadata)
  return Task(cfg, tokenizer, model, data, trainer)


def _restore(task: Task):
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


def _restored_state(task: Task):
  state = _restore(task)
  if state is None:
    raise CheckpointError(f"no checkpoint in {task.trainer.checkpointer.directory}: "
                          "train first (--mode=train)")
  return state


def sample_text(task: Task, params, prompt: str) -> str:
  """Continues `prompt` with `decode.max_new_tokens` characters, in one jit."""
  d, length = task.cfg.decode, task.cfg.model.max_length
  prompt_ids = task.tokenizer.encode(prompt)
  if len(prompt_ids) == 0:
    raise DataError("the prompt is empty")
  size = max(len(prompt_ids) + d.max_new_tokens, length)
  buffer = np.zeros((1, size), np.int32)
  buffer[0, :len(prompt_ids)] = prompt_ids
  sampler = samplers.greedy if d.strategy == "greedy" else samplers.make_sampler(
      d.temperature, d.top_k)

  @jax.jit
  def run(params, buffer, prompt_length, key):
    apply_logits = lambda tokens: task.model.apply({"params": params}, tokens,
                                                   deterministic=True)
    step_fn = generate.windowed_step_fn(apply_logits, length)
    return generate.generate(step_fn, sampler, buffer, prompt_length, d.max_new_tokens, key)

  tokens = run(params, buffer, len(prompt_ids), jax.random.key(d.seed))
  return task.tokenizer.decode(np.asarray(tokens)[0, :len(prompt_ids) + d.max_new_tokens])


def _record_sample(workdir: str, step: int, text: str) -> None:
  with open(os.path.join(workdir, SAMPLES_FILE), "a", encoding="utf-8") as f:
    f.write(f"===== step {step} =====\n{text}\n")
  print(text)


def train(cfg: ExperimentConfig, workdir: str) -> None:
  task = build_task(cfg, workdir, need_data=True)
  state = _restore(task)  # Raises before anything is written on a mismatch.
  if state is None:
    state = task.trainer.initial_state()
  lm_data.save_tokenizer(task.tokenizer, workdir)
  with open(os.path.join(workdir, CONFIG_FILE), "w", encoding="utf-8") as f:
    json.dump(configuration.to_dict(task.cfg), f, indent=2)
  t, length = task.cfg.train, task.cfg.model.max_length
  result = task.trainer.train(state, batch_at=task.data.train_batch_at,
                              eval_batches=task.data.eval_batches,
                              tokens_per_step=t.batch_size * length)
  if result.interrupted:
    return
  final = result.last_eval or task.trainer.evaluate(result.state.params,
                                                    task.data.eval_batches())
  logging.info("step %d: eval_loss %.4f (eval_perplexity %.2f)%s", int(result.state.step),
               final["eval_loss"], final["eval_perplexity"],
               "" if result.last_eval else "; already trained to train.num_steps")
  if task.cfg.decode.max_new_tokens:
    _record_sample(workdir, int(result.state.step),
                   sample_text(task, result.state.params, task.cfg.decode.prompt))


def evaluate(cfg: ExperimentConfig, workdir: str) -> dict[str, float]:
  task = build_task(cfg, workdir, need_data=True)
  state = _restored_state(task)
  if cfg.eval.stride:  # Every held-out token scored once, with up to max_length context.
    windows = chunking.sliding_windows(task.data.validation_tokens, cfg.model.max_length,
                                       cfg.eval.stride)
    batches = lm_data.batches_of_rows(windows, cfg.eval.batch_size)
    metrics = {**task.trainer.evaluate(state.params, batches), "eval_stride": cfg.eval.stride}
  else:
    metrics = task.trainer.evaluate(state.params, task.data.eval_batches())
  writer = MetricsWriter(workdir, enable_tensorboard=False)
  writer.write(int(state.step), metrics)
  writer.close()
  print(" | ".join([f"step {int(state.step)}"] +
                   [f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in metrics.items()]))
  return metrics


def sample(cfg: ExperimentConfig, workdir: str, prompt: Optional[str]) -> str:
  task = build_task(cfg, workdir, need_data=False)
  state = _restored_state(task)
  text = sample_text(task, state.params, prompt if prompt is not None else cfg.decode.prompt)
  _record_sample(workdir, int(state.step), text)
  return text


def run(cfg: ExperimentConfig, workdir: str, mode: str, prompt: Optional[str]) -> None:
  if mode == "train":
    train(cfg, workdir)
  elif mode == "eval":
    evaluate(cfg, workdir)
  elif mode == "sample":
    sample(cfg, workdir, prompt)
  else:
    raise ValueError(f"unknown mode {mode!r}")
