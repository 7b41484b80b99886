"""The objective protocol: a loss made of sums divided by counts.

An objective turns a model's outputs on a batch into summed statistics (`sums`)
and names, in `loss_terms`, which sum is divided by which count:

    loss = Σ over terms of sums[term.sum] / max(counts[term.count], 1)

Counts depend on the batch alone (how many tokens are weighted, how many rows
are real), never on the parameters. So a batch split into micro-batches, each
one's sums divided by the whole batch's counts, adds up to the whole batch's loss
exactly, and so does the gradient. Evaluation adds `sums` over batches and
`summarize` divides once, so its means are exact whatever the batch split.
"""

from typing import Any, ClassVar, NamedTuple, Optional, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp

Batch = dict[str, jax.Array]


class LossTerm(NamedTuple):
  sum: str  # A key of `sums`: a statistic summed over the batch.
  count: str  # A key of `counts`: what that sum is divided by.


class Objective(Protocol):
  """What the trainer needs of a task's loss (see the module docstring)."""
  loss_terms: ClassVar[tuple[LossTerm, ...]]

  def counts(self, batch: Batch) -> dict[str, jax.Array]:
    """Scalars that depend on the batch only: the divisors of the loss terms."""

  def sums(self, params: Any, batch: Batch, *, training: bool,
           rng: Optional[jax.Array] = None) -> dict[str, jax.Array]:
    """Scalars summed over the batch. training: dropout (rng) and label smoothing on."""

  def summarize(self, sums: dict[str, float]) -> dict[str, float]:
    """Namespaced evaluation metrics from sums added over every evaluation batch."""


def loss_from_sums(objective: Objective, sums: dict[str, jax.Array],
                   counts: dict[str, jax.Array]) -> jax.Array:
  """Σ over the objective's terms of sums[term.sum] / max(counts[term.count], 1)."""
  parts = [sums[t.sum] / jnp.maximum(counts[t.count], 1.0) for t in objective.loss_terms]
  total = parts[0]
  for part in parts[1:]:
    total = total + part
  return total


def train_loss(objective: Objective, params: Any, batch: Batch, rng: jax.Array,
               counts: Optional[dict[str, jax.Array]] = None) -> tuple[jax.Array, dict]:
  """(loss, sums) of a training step, the value differentiated.

  counts: the divisors; default this batch's own. A micro-batch passes its whole
  batch's counts, so the micro-batches' losses add up to the whole batch's.
  """
  if counts is None:
    counts = objective.counts(batch)
  sums = objective.sums(params, batch, training=True, rng=rng)
  return loss_from_sums(objective, sums, counts), sums


def eval_sums(objective: Objective, params: Any, batch: Batch) -> dict[str, jax.Array]:
  return objective.sums(params, batch, training=False)


def apply_model(model: nn.Module, params: Any, *inputs: jax.Array, training: bool,
                rng: Optional[jax.Array] = None, **kwargs):
  """model.apply on the parameters: dropout (from rng) when training, none otherwise."""
  rngs = {"dropout": rng} if training else None
  return model.apply({"params": params}, *inputs, deterministic=not training, rngs=rngs,
                     **kwargs)


def weight_count(targets: jax.Array, weights: Optional[jax.Array]) -> jax.Array:
  """How many target tokens count: the sum of the weights (every token without them)."""
  if weights is None:
    return jnp.asarray(targets.size, jnp.float32)
  return jnp.sum(weights.astype(jnp.float32))


def token_metrics(sums: dict[str, float], prefix: str = "eval") -> dict[str, float]:
  """Namespaced loss, perplexity, accuracy and count from summed token statistics
  (`cross_entropy.cross_entropy_sums` keys)."""
  count = max(float(sums["token_count"]), 1.0)
  loss = float(sums["loss_sum"]) / count
  return {f"{prefix}_loss": loss,
          f"{prefix}_perplexity": float(jnp.exp(jnp.minimum(loss, 80.0))),
          f"{prefix}_token_accuracy": float(sums["correct_sum"]) / count,
          f"{prefix}_tokens": int(sums["token_count"])}
