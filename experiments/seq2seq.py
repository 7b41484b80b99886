"""Translation with an encoder-decoder Transformer on any parallel corpus (tsv or aligned).

Default: English→Chinese on the shipped Tatoeba pairs, split by source sentence.
Modes: `train` (resumes, evaluates) and `eval` (eval_loss, eval_perplexity,
eval_token_accuracy of the latest checkpoint, teacher-forced on validation pairs).
tokens/s counts source and target positions.
"""

from __future__ import annotations

from typing import Optional

from experiments import task as task_lib
from transformer_jax.configuration import ExperimentConfig
from transformer_jax.data import translation_data
from transformer_jax.errors import UserError
from transformer_jax.models.encoder_decoder import EncoderDecoder
from transformer_jax.objectives.seq2seq import Seq2SeqObjective


def build_task(cfg: ExperimentConfig, workdir: str) -> task_lib.Task:
  data = translation_data.build(cfg, workdir)
  length = cfg.model.max_length
  return task_lib.build(
      cfg, workdir, tokenizer=data.tokenizer, data=data, make_model=EncoderDecoder,
      make_objective=lambda model: Seq2SeqObjective(model, cfg.train.label_smoothing),
      example_lengths=(length, length))


def run(cfg: ExperimentConfig, workdir: str, mode: str, prompt: Optional[str]) -> None:
  del prompt
  if mode == "train":
    task_lib.train(build_task(cfg, workdir), workdir,
                   2 * cfg.train.batch_size * cfg.model.max_length)
  elif mode == "eval":
    task_lib.evaluate(build_task(cfg, workdir), workdir)
  else:
    raise UserError(f"--mode={mode} is not available for experiment seq2seq yet: "
                    "use train or eval")
