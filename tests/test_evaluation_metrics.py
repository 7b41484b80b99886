"""Metrics that evaluation batches cannot give (seq2seq's validation BLEU) enter every
evaluation of a training run through `more_metrics(params)`, with that evaluation's
parameters."""

import jax
import numpy as np
import pytest

from configs import seq2seq as seq2seq_config
from transformer_jax.evaluation import validation_bleu
from transformer_jax.tasks import seq2seq
from transformer_jax.run import train as train_lib
from transformer_jax import configuration
from transformer_jax.training.metrics_writer import read_metrics


def _norm(params) -> float:
  return float(sum(np.abs(np.asarray(leaf)).sum() for leaf in jax.tree.leaves(params)))


@pytest.mark.slow  # A whole training run with evaluations: see setup.cfg's markers.
def test_every_evaluation_adds_the_metrics_of_its_own_parameters(tmp_path):
  cfg = configuration.validate(seq2seq_config.get_config("tiny"))
  task = seq2seq.build_task(cfg, str(tmp_path))
  result = train_lib.train(task, tokens_per_step=1,
                          more_metrics=lambda params: {"eval_parameter_norm": _norm(params)})
  evals = [r for r in read_metrics(str(tmp_path)) if "eval_loss" in r]
  assert [r["step"] for r in evals] == [15, 30]
  assert evals[-1]["eval_parameter_norm"] == _norm(result.state.params)
  assert evals[0]["eval_parameter_norm"] != evals[-1]["eval_parameter_norm"]
  assert result.last_eval["eval_parameter_norm"] == evals[-1]["eval_parameter_norm"]


def test_validation_bleu_pairs_are_spread_over_the_split():
  items = list(range(10))
  assert validation_bleu.evenly_spaced(items, 4) == [0, 3, 6, 9]
  assert validation_bleu.evenly_spaced(items, 1) == [0]
  assert validation_bleu.evenly_spaced(items, 10) == items
  assert validation_bleu.evenly_spaced(items, 50) == items
  assert validation_bleu.evenly_spaced(items, 0) == []
