"""Causal LM task: a character-level GPT on one text corpus. Composes the library.

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
from transformer_jax.data import lm_batches, text_files
from transformer_jax.data.char_tokenizer import CharTokenizer
from transformer_jax.decoding import generate, samplers
from transformer_jax.errors import CheckpointError, DataError
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
  tokenizer: CharTokenizer
  model: Decoder
  split: Optional[lm_batches.Split]
  trainer: Trainer


def _tokenizer(cfg: ExperimentConfig, workdir: str, text: Optional[str]) -> CharTokenizer:
  """The workdir's vocabulary if it has one (resume, eval, sample), else built from text."""
  if os.path.exists(os.path.join(workdir, "vocabulary.json")):
    return CharTokenizer.load(workdir)
  if text is None:
    raise CheckpointError(f"{workdir} has no vocabulary.json: train a model there first")
  return CharTokenizer.from_text(text)


def build_task(cfg: ExperimentConfig, workdir: str, need_data: bool) -> Task:
  text = text_files.read_text(cfg.data.path) if need_data else None
  tokenizer = _tokenizer(cfg, workdir, text)
  model_cfg = dataclasses.replace(cfg.model, vocab_size=tokenizer.vocab_size)
  cfg = dataclasses.replace(cfg, model=model_cfg)
  split = None
  if text is not None:
    split = lm_batches.split_stream(tokenizer.encode(text), cfg.data.validation_fraction,
                                    model_cfg.max_length)
  mesh = partitioning.make_mesh(cfg.mesh, cfg.train.batch_size)
  os.makedirs(workdir, exist_ok=True)  # Only once the data and config have been checked.
  if cfg.eval.batch_size % mesh.devices.size:
    raise configuration.ConfigError(
        "eval.batch_size", f"{cfg.eval.batch_size} is not divisible by the "
        f"{mesh.devices.size} data-parallel devices")
  model = Decoder(model_cfg)
  example = jnp.zeros((1, model_cfg.max_length), jnp.int32)
  init_params = lambda key: model.init(key, example, deterministic=True)["params"]
  trainer = Trainer(objective=CausalLmObjective(model), init_params=init_params,
                    config=cfg.train, mesh=mesh, workdir=workdir,
                    checkpoint_metadata={"model": dataclasses.asdict(model_cfg)})
  return Task(cfg, tokenizer, model, split, trainer)


def _rows(tokens: np.ndarray, seed: int, step: int, batch_size: int, length: int) -> dict:
  return lm_batches.batch_at(tokens, seed, step, batch_size, length,
                             jax.process_index(), jax.process_count())


def _eval_batches(task: Task):
  e, length = task.cfg.eval, task.cfg.model.max_length
  # The same windows at every evaluation, so eval_loss curves compare like with like.
  return (_rows(task.split.validation, task.cfg.train.seed, i, e.batch_size, length)
          for i in range(e.num_batches))


def _restored_state(task: Task, workdir: str):
  restored = task.trainer.checkpointer.restore_latest(
      task.trainer.abstract_state, task.trainer.metadata)
  if restored is None:
    raise CheckpointError(f"no checkpoint in {task.trainer.checkpointer.directory}: "
                          "train first (--mode=train)")
  return restored[0]


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
  state = task.trainer.restore_or_init()  # Raises before anything is written on mismatch.
  task.tokenizer.save(workdir)
  with open(os.path.join(workdir, CONFIG_FILE), "w", encoding="utf-8") as f:
    json.dump(configuration.to_dict(task.cfg), f, indent=2)
  t, length = task.cfg.train, task.cfg.model.max_length
  result = task.trainer.train(
      state,
      batch_at=lambda step: _rows(task.split.train, t.seed, step, t.batch_size, length),
      eval_batches=lambda: _eval_batches(task),
      tokens_per_step=t.batch_size * length)
  if result.interrupted:
    return
  final = result.last_eval or task.trainer.evaluate(result.state.params, _eval_batches(task))
  logging.info("step %d: eval_loss %.4f (eval_perplexity %.2f)%s", int(result.state.step),
               final["eval_loss"], final["eval_perplexity"],
               "" if result.last_eval else "; already trained to train.num_steps")
  if task.cfg.decode.max_new_tokens:
    _record_sample(workdir, int(result.state.step),
                   sample_text(task, result.state.params, task.cfg.decode.prompt))


def evaluate(cfg: ExperimentConfig, workdir: str) -> dict[str, float]:
  task = build_task(cfg, workdir, need_data=True)
  state = _restored_state(task, workdir)
  metrics = task.trainer.evaluate(state.params, _eval_batches(task))
  writer = MetricsWriter(workdir, enable_tensorboard=False)
  writer.write(int(state.step), metrics)
  writer.close()
  print(" | ".join([f"step {int(state.step)}"] +
                   [f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in metrics.items()]))
  return metrics


def sample(cfg: ExperimentConfig, workdir: str, prompt: Optional[str]) -> str:
  task = build_task(cfg, workdir, need_data=False)
  state = _restored_state(task, workdir)
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
