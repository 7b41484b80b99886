"""--mode=eval's evaluation of any parameters, and its record in the workdir."""

from __future__ import annotations

import os
from typing import Iterable, Optional

import jax

from transformer_jax.quantization import int8
from transformer_jax.run import weights
from transformer_jax.run.task import Task
from transformer_jax.training import distributed
from transformer_jax.training.loop import MoreMetrics, format_metrics
from transformer_jax.training.metrics_writer import MetricsWriter


def evaluate_params(task: Task, params, batches: Iterable[dict],
                    more_metrics: Optional[MoreMetrics] = None) -> dict[str, float]:
  """Trainer.evaluate for float or int8 parameters (each in the sharding it has)."""
  shardings = None
  if isinstance(task.model, int8.Int8Model):
    shardings = jax.tree_util.tree_map(lambda leaf: leaf.sharding, params)
  return task.trainer.evaluate(params, batches, more_metrics, param_shardings=shardings)


def record_evaluation(workdir: str, step: int, metrics: dict[str, float]) -> None:
  """Appends to metrics.jsonl (the workdir is made if new) and prints one line."""
  if distributed.is_main_process():
    os.makedirs(workdir, exist_ok=True)
  writer = MetricsWriter(workdir, enable_tensorboard=False)
  writer.write(step, metrics)
  writer.close()
  if distributed.is_main_process():
    print(f"step {step} | {format_metrics(metrics)}")


def test_metrics(task: Task, params) -> dict[str, float]:
  """The evaluation metrics of the data's test batches, named test_* (none without them)."""
  batches = getattr(task.data, "test_batches", None)
  if batches is None:
    return {}
  metrics = evaluate_params(task, params, batches())
  return {key.replace("eval_", "test_", 1): value for key, value in metrics.items()}


def evaluate(task: Task) -> dict[str, float]:
  """--mode=eval: the mode's parameters (`weights.inference_state`) on the evaluation
  batches (eval_*) and, where the data has a test split, on its batches (test_*),
  recorded in the workdir."""
  params, step = weights.inference_state(task)
  metrics = {**evaluate_params(task, params, task.data.eval_batches()),
             **test_metrics(task, params)}
  record_evaluation(task.workdir, step, metrics)
  return metrics
