"""Losses by hand: label smoothing, BERT's two-part loss, the metrics' namespaces."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from transformer_jax.models.outputs import ModelOutput
from transformer_jax.objectives import objective as objective_lib
from transformer_jax.objectives.objective import token_metrics
from transformer_jax.objectives.cross_entropy import cross_entropy_sums
from transformer_jax.objectives.masked_lm import MaskedLmObjective

LOGITS = jnp.array([[[2.0, 0.0, 0.0, -1.0], [0.0, 1.0, 0.0, 0.0]]])  # [1, 2, 4]
TARGETS = jnp.array([[0, 2]])


def _log_softmax(row):
  row = np.asarray(row, np.float64)
  return row - math.log(np.exp(row).sum())


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5])
def test_label_smoothing_matches_the_smoothed_target_distribution(smoothing):
  sums = cross_entropy_sums(LOGITS, TARGETS, label_smoothing=smoothing)
  expected = 0.0
  for row, target in zip(LOGITS[0], TARGETS[0]):
    distribution = np.full(4, smoothing / 4)
    distribution[int(target)] += 1 - smoothing
    expected -= float(np.dot(distribution, _log_softmax(row)))
  np.testing.assert_allclose(float(sums["loss_sum"]), expected, rtol=1e-6)
  assert float(sums["correct_sum"]) == 1.0 and float(sums["token_count"]) == 2.0


def test_weights_exclude_positions():
  sums = cross_entropy_sums(LOGITS, TARGETS, jnp.array([[1.0, 0.0]]))
  np.testing.assert_allclose(float(sums["loss_sum"]), -_log_softmax(LOGITS[0, 0])[0], rtol=1e-6)
  assert float(sums["token_count"]) == 1.0


def test_token_metrics_are_namespaced_means():
  metrics = token_metrics({"loss_sum": 6.0, "correct_sum": 3.0, "token_count": 4.0}, "eval_x")
  assert metrics == {"eval_x_loss": 1.5, "eval_x_perplexity": pytest.approx(math.exp(1.5)),
                     "eval_x_token_accuracy": 0.75, "eval_x_tokens": 4}


class _FixedHeads:
  """Stands in for BertPretraining: returns fixed logits whatever the parameters."""

  def apply(self, variables, tokens, **kwargs):
    del variables, tokens, kwargs
    return ModelOutput(hidden_states=jnp.zeros((2, 3, 1)),
                       logits=jnp.broadcast_to(LOGITS[0, 0], (2, 3, 4)),
                       next_sentence_logits=jnp.array([[0.0, 2.0], [0.0, 2.0]]))


def test_masked_lm_loss_is_mlm_mean_plus_nsp_mean_ignoring_filler_rows():
  batch = {"inputs": jnp.zeros((2, 3), jnp.int32), "token_types": jnp.zeros((2, 3), jnp.int32),
           "targets": jnp.array([[0, 1, 0], [3, 0, 0]]),
           "weights": jnp.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]),
           "segment_ids": jnp.array([[1, 1, 1], [0, 0, 0]]),  # Row 2: a filler row.
           "is_next": jnp.array([1, 0])}
  objective = MaskedLmObjective(_FixedHeads())
  loss, sums = objective_lib.train_loss(objective, None, batch, None)
  log_p = _log_softmax(LOGITS[0, 0])
  mlm = -(log_p[0] + log_p[1] + log_p[3]) / 3
  nsp = -_log_softmax([0.0, 2.0])[1]  # Only row 1 counts; its label is "is next".
  np.testing.assert_allclose(float(loss), mlm + nsp, rtol=1e-6)
  metrics = objective.summarize({k: float(v) for k, v in sums.items()})
  assert metrics["eval_mlm_accuracy"] == pytest.approx(1 / 3)  # argmax 0 hits target 0 once.
  assert metrics["eval_nsp_accuracy"] == 1.0 and metrics["eval_nsp_examples"] == 1
  assert metrics["eval_loss"] == pytest.approx(mlm + nsp, rel=1e-6)
