"""metrics.jsonl: one JSON object per line, each with `step`; one writer per run."""

import json
import math

import pytest

from transformer_jax.training.metrics_writer import MetricsWriter, read_metrics


def test_records_append_with_step_and_survive_a_reopen(tmp_path):
  writer = MetricsWriter(str(tmp_path), enable_tensorboard=False)
  writer.write(10, {"train_loss": 1.5})
  writer.close()
  writer = MetricsWriter(str(tmp_path), enable_tensorboard=False)  # A resumed run appends.
  writer.write(20, {"eval_loss": 1.25, "eval_perplexity": math.exp(1.25)})
  writer.close()
  assert read_metrics(str(tmp_path)) == [
      {"step": 10, "train_loss": 1.5},
      {"step": 20, "eval_loss": 1.25, "eval_perplexity": math.exp(1.25)}]


def test_non_finite_values_stay_valid_json(tmp_path):
  writer = MetricsWriter(str(tmp_path), enable_tensorboard=False)
  writer.write(1, {"train_loss": float("nan"), "train_grad_norm": float("inf"),
                   "learning_rate": -float("inf")})
  writer.close()
  line = (tmp_path / "metrics.jsonl").read_text().strip()
  # Strict JSON (no NaN/Infinity tokens): null, as issue 15 asks, not the string "nan".
  assert json.loads(line, parse_constant=lambda name: pytest.fail(name)) == {
      "step": 1, "train_loss": None, "train_grad_norm": None, "learning_rate": None}


def test_only_the_writing_process_writes(tmp_path):
  writer = MetricsWriter(str(tmp_path), is_writer=False)  # Process > 0 of a multi-host run.
  writer.write(1, {"train_loss": 2.0})
  writer.close()
  assert list(tmp_path.iterdir()) == []
