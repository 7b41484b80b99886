"""BERT pretraining: masked LM (80/10/10) and next-sentence prediction on any text.

Passages (blank-line separated) give sentence pairs; see
`transformer_jax.data.batches.sentence_pairs`. Modes: `train` (resumes, evaluates),
`eval` (eval_loss, eval_mlm_accuracy, eval_nsp_accuracy), `attention` (draws the
attention over <cls> --input <sep>) and `export` (a Hugging Face BERT folder, or the
project's own). Every mode but train reads the workdir's latest checkpoint, or
train.init_from's weights in a workdir without one.
"""

from __future__ import annotations

from typing import Optional

from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data.tasks import mlm_data
from transformer_jax.data.tokenizers import special_tokens
from transformer_jax.inspection import attention_plots
from transformer_jax.models.bert import BertPretraining
from transformer_jax.objectives.masked_lm import MaskedLmObjective
from transformer_jax.run import evaluate as evaluate_lib
from transformer_jax.run import export, modes, task as task_lib, train as train_lib, weights

MODES = ("train", "eval", "attention", "export")


def model_spec(cfg: ExperimentConfig) -> task_lib.ModelSpec:
  return task_lib.ModelSpec(make_model=BertPretraining, make_objective=MaskedLmObjective,
                            example_lengths=(cfg.model.max_length,))


def build_task(cfg: ExperimentConfig, workdir: Optional[str],
               need_data: bool = True) -> task_lib.Task:
  make_data = (lambda existing: mlm_data.build(cfg, existing)) if need_data else None
  return task_lib.build(cfg, workdir, model_spec(cfg), make_data)


def cls_sep_ids(tokenizer, text: str, length: int) -> list[int]:
  """<cls> TEXT <sep>, the text cut to fit `length` slots."""
  body = list(tokenizer.encode(text))[:length - 2]
  return ([tokenizer.token_id(special_tokens.CLS)] + body
          + [tokenizer.token_id(special_tokens.SEP)])


def attention(cfg: ExperimentConfig, workdir: str, inputs: modes.ModeInputs) -> list[str]:
  """--mode=attention: the self-attention weights of every layer over <cls> TEXT <sep>
  (cut to model.max_length), as <output>/self_attention.npy and one PNG per layer."""
  cfg, text, directory = modes.attention_inputs(cfg, inputs)
  task = build_task(cfg, workdir, need_data=False)
  params = weights.inference_params(task)
  ids = cls_sep_ids(task.tokenizer, text, cfg.model.max_length)
  return attention_plots.write_self_attention(directory, task.model, params, task.tokenizer,
                                             list(ids))


def run(cfg: ExperimentConfig, workdir: str, mode: str, inputs: modes.ModeInputs) -> None:
  if mode == "train":
    train_lib.train(build_task(cfg, workdir), cfg.train.batch_size * cfg.model.max_length)
  elif mode == "eval":
    evaluate_lib.evaluate(build_task(cfg, workdir))
  elif mode == "attention":
    attention(cfg, workdir, inputs)
  elif mode == "export":
    export.export(build_task(cfg, workdir, need_data=False), inputs)
  else:
    raise modes.unavailable(cfg.experiment, mode, MODES)
