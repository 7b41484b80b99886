"""Causal LM: a GPT on any `data.*` corpus (char or BPE, stream or packed documents).

Modes: `train` (resumes from the workdir's latest checkpoint, evaluates, then
samples), `eval` (validation loss and perplexity), `sample` (continues a prompt;
decode.strategy=beam gives the n-best continuations with their scores), `attention`
(draws the attention weights over --input) and `export` (a Hugging Face GPT-2 folder,
or the project's own). On a named text dataset (`data.dataset=wikitext-2`), `eval` with
`eval.stride` > 0 also scores the test split (`test_*` metrics) and, where the catalog
says so, reports word-level perplexity (`eval_word_perplexity`, `test_word_perplexity`:
exp(total NLL / words, one <eos> per line)). Every mode but train reads the workdir's
latest checkpoint, or train.init_from's weights in a workdir without one.
"""

from __future__ import annotations

import math
import os
from typing import Optional

import numpy as np
from absl import logging

from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data.batches import chunking, row_batches
from transformer_jax.data.tasks import lm_data
from transformer_jax.decoding.continuer import Continuer, n_best_text
from transformer_jax.errors import DataError, UserError
from transformer_jax.inspection import attention_plots
from transformer_jax.models.decoder import Decoder
from transformer_jax.objectives.causal_lm import CausalLmObjective
from transformer_jax.run import evaluate as evaluate_lib
from transformer_jax.run import export, line_files, modes, task as task_lib, train as train_lib
from transformer_jax.run import weights
from transformer_jax.training import distributed

SAMPLES_FILE = "samples.txt"
MODES = ("train", "eval", "sample", "attention", "export", "lm_eval")


def model_spec(cfg: ExperimentConfig) -> task_lib.ModelSpec:
  return task_lib.ModelSpec(
      make_model=Decoder,
      make_objective=lambda model: CausalLmObjective(model, cfg.train.label_smoothing),
      example_lengths=(cfg.model.max_length,))


def build_task(cfg: ExperimentConfig, workdir: Optional[str],
               need_data: bool = True) -> task_lib.Task:
  make_data = (lambda existing: lm_data.build(cfg, existing)) if need_data else None
  return task_lib.build(cfg, workdir, model_spec(cfg), make_data)


def continuer(task: task_lib.Task, decode=None) -> Continuer:
  """The task's Continuer (decode: another DecodeConfig than the task's)."""
  model, _ = task.decoding_model(None)
  return Continuer(model, task.tokenizer, decode or task.cfg.decode,
                   context=task.decoding_mesh,
                   prepare=lambda params: task.decoding_model(params)[1])


def continue_prompt(task: task_lib.Task, params, prompt: str) -> str:
  """The text `sample` and `train` record for one prompt: the n-best with beam search,
  else the prompt and its continuation."""
  if task.cfg.decode.strategy == "beam":
    return n_best_text([prompt], continuer(task).n_best(params, [prompt]), numbered=False)
  return continuer(task).continue_text(params, prompt)


def _record_sample(workdir: str, step: int, text: str) -> None:
  if not distributed.is_main_process():
    return
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, SAMPLES_FILE), "a", encoding="utf-8") as f:
    f.write(f"===== step {step} =====\n{text}\n")
  print(text)


def train(cfg: ExperimentConfig, workdir: str) -> None:
  task = build_task(cfg, workdir, need_data=True)
  result = train_lib.train(task, cfg.train.batch_size * cfg.model.max_length)
  if result is not None and task.cfg.decode.max_new_tokens:
    _record_sample(workdir, int(result.state.step),
                   continue_prompt(task, result.state.params, task.cfg.decode.prompt))


def evaluate(cfg: ExperimentConfig, workdir: str) -> dict[str, float]:
  """eval_* of the evaluation batches, or with eval.stride > 0 of every held-out token in
  sliding windows; test_* of the test text (a named dataset's, data.test_path's, or the
  documents data.test_fraction holds out) in sliding windows of eval.stride (or
  model.max_length without one), and word-level perplexity where the catalog says so."""
  task = build_task(cfg, workdir, need_data=True)
  if not cfg.eval.stride and task.data.test_tokens is None:
    return evaluate_lib.evaluate(task)
  params, step = weights.inference_state(task)
  if cfg.eval.stride:  # Every held-out token scored once, with up to max_length of context.
    metrics = {**_sliding_window_metrics(task, params, task.data.validation_tokens,
                                         cfg.eval.stride), "eval_stride": cfg.eval.stride}
  else:
    metrics = evaluate_lib.evaluate_params(task, params, task.data.eval_batches())
  if task.data.test_tokens is not None:
    test = _sliding_window_metrics(task, params, task.data.test_tokens,
                                   cfg.eval.stride or cfg.model.max_length)
    metrics.update({"test" + name.removeprefix("eval"): value for name, value in test.items()})
  if task.data.word_counts is not None:  # Of the splits whose every token was scored.
    scored = metrics if cfg.eval.stride else {k: v for k, v in metrics.items()
                                              if not k.startswith("eval_")}
    metrics.update(word_level_metrics(scored, task.data.word_counts))
  evaluate_lib.record_evaluation(workdir, step, metrics)
  return metrics


def _sliding_window_metrics(task: task_lib.Task, params, tokens: np.ndarray,
                            stride: int) -> dict:
  cfg = task.cfg
  windows = chunking.sliding_windows(tokens, cfg.model.max_length, stride)
  return evaluate_lib.evaluate_params(task, params, row_batches.batches_of_rows(
      windows, cfg.eval.batch_size))


def word_level_metrics(metrics: dict, word_counts: dict[str, int]) -> dict[str, float]:
  """{prefix_words, prefix_word_perplexity} for eval (validation) and test: the total NLL
  (loss x scored tokens) over the split's words, one <eos> per line counted as a word."""
  result = {}
  for prefix, split in (("eval", "validation"), ("test", "test")):
    if f"{prefix}_loss" not in metrics:
      continue
    total = metrics[f"{prefix}_loss"] * metrics[f"{prefix}_tokens"]
    words = word_counts[split]
    result[f"{prefix}_words"] = words
    result[f"{prefix}_word_perplexity"] = math.exp(min(total / words, 80.0))
  return result


def sample(cfg: ExperimentConfig, workdir: str, prompt: Optional[str],
           prompts_file: Optional[str] = None) -> str:
  if prompts_file is not None and prompt is not None:
    raise UserError("give --prompt or --prompts_file, not both")
  prompts = None
  if prompts_file is not None:
    prompts = [line for line in line_files.read_lines(prompts_file, "--prompts_file") if line]
    if not prompts:
      raise DataError(f"--prompts_file {prompts_file} holds no prompt")
  task = build_task(cfg, workdir, need_data=False)
  params, step = weights.inference_state(task)
  if prompts is not None and cfg.decode.strategy == "beam":
    text = n_best_text(prompts, continuer(task).n_best(params, prompts), numbered=True)
  elif prompts is not None:
    continuations = continuer(task).continue_batch(params, prompts)
    text = "\n".join(f"===== prompt {number} =====\n{prompt}{continuation}"
                     for number, (prompt, continuation)
                     in enumerate(zip(prompts, continuations), start=1))
  else:
    text = continue_prompt(task, params, prompt if prompt is not None else cfg.decode.prompt)
  _record_sample(workdir, step, text)
  return text


def attention(cfg: ExperimentConfig, workdir: str, inputs: modes.ModeInputs) -> list[str]:
  """--mode=attention: the self-attention weights of every layer over --input's tokens (the
  first model.max_length), as <output>/self_attention.npy [L, H, T, T] and one PNG per layer."""
  cfg, text, directory = modes.attention_inputs(cfg, inputs)
  task = build_task(cfg, workdir, need_data=False)
  params = weights.inference_params(task)
  ids = task.tokenizer.encode(text)
  if len(ids) == 0:
    raise DataError("--input holds no token")
  if len(ids) > cfg.model.max_length:
    logging.warning("--input has %d tokens: drawing the first model.max_length=%d", len(ids),
                    cfg.model.max_length)
    ids = ids[:cfg.model.max_length]
  return attention_plots.write_self_attention(directory, task.model, params, task.tokenizer,
                                             list(ids))


def run(cfg: ExperimentConfig, workdir: str, mode: str, inputs: modes.ModeInputs) -> None:
  if mode == "train":
    train(cfg, workdir)
  elif mode == "eval":
    evaluate(cfg, workdir)
  elif mode == "sample":
    sample(cfg, workdir, inputs.prompt, inputs.prompts_file)
  elif mode == "attention":
    attention(cfg, workdir, inputs)
  elif mode == "export":
    export.export(build_task(cfg, workdir, need_data=False), inputs)
  elif mode == "lm_eval":
    from transformer_jax.tasks import lm_harness  # pylint: disable=import-outside-toplevel
    lm_harness.evaluate(cfg, workdir, inputs, build_task)
  else:
    raise modes.unavailable(cfg.experiment, mode, MODES)
