"""BERT pretraining: masked LM (80/10/10) and next-sentence prediction on any text.

Passages (blank-line separated) give sentence pairs; see
`transformer_jax.data.sentence_pairs`. Modes: `train` (resumes, evaluates) and
`eval` (eval_loss, eval_mlm_accuracy, eval_nsp_accuracy of the latest checkpoint).
"""

from __future__ import annotations

from experiments import task as task_lib
from transformer_jax.configuration import ExperimentConfig
from transformer_jax.data import catalog, mlm_data
from transformer_jax.errors import UserError
from transformer_jax.models.bert import BertPretraining
from transformer_jax.objectives.masked_lm import MaskedLmObjective


def validate(cfg: ExperimentConfig) -> None:
  """The rules of this experiment's own (see `configuration.validate`); data.packing is
  unused (sentence-pair rows)."""
  task_lib.check_no_translation_fields(cfg)
  catalog.check_kind(cfg, (catalog.TEXT,))


def build_task(cfg: ExperimentConfig, workdir: str) -> task_lib.Task:
  return task_lib.build(cfg, workdir, data=mlm_data.build(cfg, workdir),
                        make_model=BertPretraining, make_objective=MaskedLmObjective,
                        example_lengths=(cfg.model.max_length,))


def run(cfg: ExperimentConfig, workdir: str, mode: str, inputs: task_lib.ModeInputs) -> None:
  del inputs  # No generation for an encoder.
  if mode == "train":
    task_lib.train(build_task(cfg, workdir), workdir, cfg.train.batch_size * cfg.model.max_length)
  elif mode == "eval":
    task_lib.evaluate(build_task(cfg, workdir), workdir)
  else:
    raise UserError(f"--mode={mode} is not available for experiment mlm: use train or eval")
