"""Supervised fine-tuning of a decoder-only model on prompt/completion pairs.

The loss counts the completion's tokens only (`transformer_jax.data.tasks.sft_data`: the
template `prompt <eos> completion <eos>` is made of token ids). Usually a warm start
(`train.init_from`) of a pretrained GPT, with any `finetune.method` but head.
Modes: `train` (resumes; every evaluation reports the completion loss and, with
eval.bleu_pairs > 0, eval_validation_bleu of that many validation prompts completed
with decode.*), `eval` (the same, then eval_bleu on the test split, completions
written to completions_test_step<N>.txt), `sample` (--prompt or decode.prompt,
completed with the same template) and `export` (a standalone workdir).
"""

from __future__ import annotations

import os
import time
from typing import Optional

from absl import logging

from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data.tasks import sft_data
from transformer_jax.decoding.completer import Completer
from transformer_jax.errors import UserError
from transformer_jax.evaluation import validation_bleu
from transformer_jax.run import evaluate as evaluate_lib
from transformer_jax.run import export, line_files, modes, task as task_lib, train as train_lib
from transformer_jax.run import weights
from transformer_jax.tasks import clm
from transformer_jax.training import distributed

COMPLETIONS_FILE = "completions_test_step{step}.txt"
MODES = ("train", "eval", "sample", "export", "lm_eval")


def build_task(cfg: ExperimentConfig, workdir: Optional[str],
               need_data: bool = True) -> task_lib.Task:
  make_data = (lambda existing: sft_data.build(cfg, existing)) if need_data else None
  return task_lib.build(cfg, workdir, clm.model_spec(cfg), make_data)  # A GPT's.


def make_completer(task: task_lib.Task, decode=None) -> Completer:
  """The task's completer (decode: another DecodeConfig than the task's)."""
  model, _ = task.decoding_model(None)
  return Completer(model, task.tokenizer, decode or task.cfg.decode,
                   batch_size=task.cfg.eval.batch_size, context=task.decoding_mesh,
                   prepare=lambda params: task.decoding_model(params)[1],
                   shots=task.data.few_shot_pairs if task.data is not None else ())


def validation_bleu_metric(task: task_lib.Task, completer: Completer):
  return validation_bleu.metric(task.data.validation_pairs, task.cfg.eval.bleu_pairs,
                                completer.complete, f"decode.strategy={task.cfg.decode.strategy}")


def evaluate(cfg: ExperimentConfig, workdir: str) -> dict[str, float]:
  task = build_task(cfg, workdir)
  params, step = weights.inference_state(task)
  completer = make_completer(task)
  if completer.shots:
    logging.info("few-shot prompts: %d training pairs before each (decode.seed=%d)",
                 len(completer.shots), cfg.decode.seed)
  metrics = evaluate_lib.evaluate_params(task, params, task.data.eval_batches(),
                                         validation_bleu_metric(task, completer))
  if task.data.test_pairs:
    start = time.time()
    metrics["eval_bleu"], outputs = validation_bleu.decoded_bleu(completer.complete, params,
                                                                 task.data.test_pairs)
    if distributed.is_main_process():
      os.makedirs(workdir, exist_ok=True)  # A read-only eval of train.init_from's weights.
      line_files.write_lines(outputs, os.path.join(workdir, COMPLETIONS_FILE.format(step=step)))
    logging.info("test BLEU %.2f on %d pairs in %.1f s; %d prompts cut", metrics["eval_bleu"],
                 len(task.data.test_pairs), time.time() - start, completer.num_cut)
  evaluate_lib.record_evaluation(workdir, step, metrics)
  return metrics


def sample(cfg: ExperimentConfig, workdir: str, prompt: Optional[str]) -> str:
  task = build_task(cfg, workdir, need_data=False)
  params, _ = weights.inference_state(task)
  completion = make_completer(task).complete(params, [prompt or cfg.decode.prompt])[0]
  if distributed.is_main_process():
    print(completion)
  return completion


def run(cfg: ExperimentConfig, workdir: str, mode: str, inputs: modes.ModeInputs) -> None:
  if mode == "train":
    task = build_task(cfg, workdir)
    train_lib.train(task, cfg.train.batch_size * cfg.model.max_length,
                    more_metrics=validation_bleu_metric(task, make_completer(task)))
  elif mode == "eval":
    evaluate(cfg, workdir)
  elif mode == "sample":
    if inputs.prompts_file is not None:
      raise UserError("--prompts_file is for experiment clm; sft completes one --prompt")
    sample(cfg, workdir, inputs.prompt)
  elif mode == "export":
    export.export_workdir(build_task(cfg, workdir, need_data=False), inputs)
  elif mode == "lm_eval":
    from transformer_jax.tasks import lm_harness  # pylint: disable=import-outside-toplevel
    lm_harness.evaluate(cfg, workdir, inputs, build_task)
  else:
    raise modes.unavailable(cfg.experiment, mode, MODES)
