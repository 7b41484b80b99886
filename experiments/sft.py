"""Supervised fine-tuning of a decoder-only model on prompt/completion pairs.

The loss counts the completion's tokens only (`transformer_jax.data.sft_data`: the
template `prompt <eos> completion <eos>` is made of token ids). Usually a warm start
(`train.init_from`) of a pretrained GPT, with any `finetune.method` but head.
Modes: `train` (resumes; every evaluation reports the completion loss and, with
eval.bleu_pairs > 0, eval_validation_bleu of that many validation prompts completed
with decode.*), `eval` (the same, then eval_bleu on the test split, completions
written to completions_test_step<N>.txt) and `sample` (--prompt or decode.prompt,
completed with the same template).
"""

from __future__ import annotations

import os
import time
from typing import Optional, Sequence

from absl import logging

from experiments import task as task_lib
from experiments.seq2seq import evenly_spaced
from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data import line_files, sft_data
from transformer_jax.decoding.completer import Completer
from transformer_jax.errors import UserError
from transformer_jax.evaluation import bleu
from transformer_jax.models.decoder import Decoder
from transformer_jax.objectives.causal_lm import CausalLmObjective
from transformer_jax.training import distributed
from transformer_jax.training.loop import MoreMetrics

COMPLETIONS_FILE = "completions_test_step{step}.txt"
VALIDATION_BLEU = "eval_validation_bleu"


def validate(cfg: ExperimentConfig) -> None:
  """The rules of this experiment's own (see `configuration.validate`): data.packing is
  unused (pairs are always packed)."""


def build_task(cfg: ExperimentConfig, workdir: str, need_data: bool = True) -> task_lib.Task:
  return task_lib.build(
      cfg, workdir, data=sft_data.build(cfg, workdir) if need_data else None,
      make_model=Decoder,
      make_objective=lambda model: CausalLmObjective(model, cfg.train.label_smoothing),
      example_lengths=(cfg.model.max_length,))


def make_completer(task: task_lib.Task) -> Completer:
  return Completer(task.model, task.tokenizer, task.cfg.decode,
                   batch_size=task.cfg.eval.batch_size,
                   context=lambda: task_lib.decoding_mesh(task))


def completed_bleu(completer: Completer, params,
                   pairs: Sequence[tuple[str, str]]) -> tuple[float, list[str]]:
  """(BLEU, the completions, one line each) of completing each pair's prompt."""
  outputs = [" ".join(c.splitlines()) for c in completer.complete(params, [p for p, _ in pairs])]
  return bleu.corpus_bleu(outputs, [reference for _, reference in pairs]), outputs


def validation_bleu(task: task_lib.Task, completer: Completer) -> Optional[MoreMetrics]:
  pairs = evenly_spaced(task.data.validation_pairs, task.cfg.eval.bleu_pairs)
  if not pairs:
    return None

  def more_metrics(params) -> dict[str, float]:
    start = time.time()
    score, outputs = completed_bleu(completer, params, pairs)
    logging.info("validation BLEU %.2f on %d pairs in %.1f s; e.g. %r -> %r (reference %r)",
                 score, len(pairs), time.time() - start, pairs[0][0], outputs[0], pairs[0][1])
    return {VALIDATION_BLEU: score}

  return more_metrics


def evaluate(cfg: ExperimentConfig, workdir: str) -> dict[str, float]:
  task = build_task(cfg, workdir)
  params, step = task_lib.inference_state(task)
  completer = make_completer(task)
  metrics = task_lib.evaluate_params(task, params, task.data.eval_batches(),
                                     validation_bleu(task, completer))
  if task.data.test_pairs:
    start = time.time()
    metrics["eval_bleu"], outputs = completed_bleu(completer, params, task.data.test_pairs)
    if distributed.is_main_process():
      line_files.write_lines(outputs, os.path.join(workdir, COMPLETIONS_FILE.format(step=step)))
    logging.info("test BLEU %.2f on %d pairs in %.1f s; %d prompts cut", metrics["eval_bleu"],
                 len(task.data.test_pairs), time.time() - start, completer.num_cut)
  task_lib.record_evaluation(workdir, step, metrics)
  return metrics


def sample(cfg: ExperimentConfig, workdir: str, prompt: Optional[str]) -> str:
  task = build_task(cfg, workdir, need_data=False)
  params, _ = task_lib.inference_state(task)
  completion = make_completer(task).complete(params, [prompt or cfg.decode.prompt])[0]
  if distributed.is_main_process():
    print(completion)
  return completion


def run(cfg: ExperimentConfig, workdir: str, mode: str, inputs: task_lib.ModeInputs) -> None:
  if mode == "train":
    task = build_task(cfg, workdir)
    task_lib.train(task, workdir, cfg.train.batch_size * cfg.model.max_length,
                   more_metrics=validation_bleu(task, make_completer(task)))
  elif mode == "eval":
    evaluate(cfg, workdir)
  elif mode == "sample":
    if inputs.prompts_file is not None:
      raise UserError("--prompts_file is for experiment clm; sft completes one --prompt")
    sample(cfg, workdir, inputs.prompt)
  elif mode == "export":
    task_lib.export_workdir(build_task(cfg, workdir, need_data=False), inputs)
  else:
    raise UserError(f"--mode={mode} is not available for experiment sft: "
                    "use train, eval, sample or export")
