"""BERT pretraining: masked LM (80/10/10) and next-sentence prediction on any text.

Passages (blank-line separated) give sentence pairs; see
`transformer_jax.data.sentence_pairs`. Modes: `train` (resumes, evaluates),
`eval` (eval_loss, eval_mlm_accuracy, eval_nsp_accuracy of the latest checkpoint),
`attention` (draws the attention over <cls> --input <sep>) and `export` (a Hugging Face
BERT folder, or the project's own).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from experiments import task as task_lib
from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data import catalog, mlm_data, special_tokens
from transformer_jax.errors import UserError
from transformer_jax.inspection import attention_plots
from transformer_jax.models.bert import BertPretraining
from transformer_jax.objectives.masked_lm import MaskedLmObjective


def validate(cfg: ExperimentConfig) -> None:
  """The rules of this experiment's own (see `configuration.validate`); data.packing is
  unused (sentence-pair rows)."""
  task_lib.check_no_translation_fields(cfg)
  catalog.check_kind(cfg, (catalog.TEXT,))


def build_task(cfg: ExperimentConfig, workdir: str, need_data: bool = True) -> task_lib.Task:
  return task_lib.build(cfg, workdir, data=mlm_data.build(cfg, workdir) if need_data else None,
                        make_model=BertPretraining, make_objective=MaskedLmObjective,
                        example_lengths=(cfg.model.max_length,))


def attention(cfg: ExperimentConfig, workdir: str, inputs: task_lib.ModeInputs) -> list[str]:
  """--mode=attention: the self-attention weights of every layer over <cls> TEXT <sep>
  (cut to model.max_length), as <output>/self_attention.npy and one PNG per layer."""
  cfg, text, directory = task_lib.attention_inputs(cfg, inputs)
  task = build_task(cfg, workdir, need_data=False)
  params = task_lib.inference_params(task)
  tokenizer = task.tokenizer
  body = list(tokenizer.encode(text))[:cfg.model.max_length - 2]
  ids = ([tokenizer.token_id(special_tokens.CLS)] + body
         + [tokenizer.token_id(special_tokens.SEP)])
  out = jax.jit(lambda params, tokens: task.model.apply(
      {"params": params}, tokens, deterministic=True, return_attention_weights=True))(
          params, jnp.asarray([ids]))
  labels = attention_plots.token_labels(tokenizer, ids)
  paths = attention_plots.write_maps(directory, "self_attention",
                                     np.asarray(out.attention_weights)[:, 0], labels, labels,
                                     "self-attention")
  logging.info("wrote %d attention maps and self_attention.npy to %s", len(paths), directory)
  return paths


def run(cfg: ExperimentConfig, workdir: str, mode: str, inputs: task_lib.ModeInputs) -> None:
  if mode == "train":
    task_lib.train(build_task(cfg, workdir), workdir, cfg.train.batch_size * cfg.model.max_length)
  elif mode == "eval":
    task_lib.evaluate(build_task(cfg, workdir), workdir)
  elif mode == "attention":
    attention(cfg, workdir, inputs)
  elif mode == "export":
    task_lib.export(build_task(cfg, workdir, need_data=False), inputs)
  else:
    raise UserError(f"--mode={mode} is not available for experiment mlm: use train, eval, "
                    "attention or export")
