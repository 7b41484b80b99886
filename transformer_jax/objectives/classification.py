"""Sequence classification: cross-entropy of a class per row, accuracy and macro F1.

Batch: 'inputs' [B, T], 'segment_ids' [B, T] (1 real, 0 padding), 'labels' [B] int32,
'weights' [B] (0 for filler rows that complete a batch). Evaluation sums, per class,
the true positives, predicted and actual counts, so macro F1 over any number of
batches is exact.
"""

import dataclasses
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.objectives import objective
from transformer_jax.objectives.cross_entropy import cross_entropy_sums
from transformer_jax.objectives.objective import LossTerm


def macro_f1(sums: dict[str, float], num_classes: int) -> float:
  """The mean over classes of F1 = 2 TP / (predicted + actual); a class absent from both
  predictions and labels counts as 1."""
  scores = []
  for c in range(num_classes):
    denominator = sums[f"predicted_{c}"] + sums[f"actual_{c}"]
    scores.append(1.0 if denominator == 0 else 2.0 * sums[f"true_positive_{c}"] / denominator)
  return sum(scores) / num_classes


@dataclasses.dataclass(frozen=True)
class ClassificationObjective:
  """Mean cross-entropy over real rows."""
  model: nn.Module
  num_classes: int
  label_smoothing: float = 0.0
  loss_terms: ClassVar = (LossTerm("loss_sum", "token_count"),)

  def counts(self, batch) -> dict[str, jax.Array]:
    return {"token_count": jnp.sum(batch["weights"].astype(jnp.float32))}

  def sums(self, params, batch, *, training: bool, rng=None) -> dict[str, jax.Array]:
    logits = objective.apply_model(self.model, params, batch["inputs"], training=training,
                                   rng=rng, segment_ids=batch["segment_ids"]).logits
    weights = batch["weights"].astype(jnp.float32)
    sums = cross_entropy_sums(logits[:, None, :], batch["labels"][:, None], weights[:, None],
                              self.label_smoothing if training else 0.0)
    predicted = jax.nn.one_hot(jnp.argmax(logits, axis=-1), self.num_classes) * weights[:, None]
    actual = jax.nn.one_hot(batch["labels"], self.num_classes) * weights[:, None]
    for c in range(self.num_classes):
      sums[f"true_positive_{c}"] = jnp.sum(predicted[:, c] * actual[:, c])
      sums[f"predicted_{c}"] = jnp.sum(predicted[:, c])
      sums[f"actual_{c}"] = jnp.sum(actual[:, c])
    return sums

  def summarize(self, sums: dict[str, float]) -> dict[str, float]:
    metrics = objective.token_metrics(sums)
    return {"eval_loss": metrics["eval_loss"],
            "eval_accuracy": metrics["eval_token_accuracy"],
            "eval_macro_f1": macro_f1(sums, self.num_classes),
            "eval_examples": metrics["eval_tokens"]}
