"""Causal language modelling: predict token t+1 from tokens 0..t.

Batch: {'inputs': [B, T], 'targets': [B, T]} int32, optionally 'weights' [B, T],
'positions' [B, T] and 'segment_ids' [B, T] for packed rows.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.objectives.cross_entropy import cross_entropy_sums


def token_metrics(sums: dict[str, float], prefix: str = "eval") -> dict[str, float]:
  """Namespaced loss, perplexity, accuracy and count from summed token statistics."""
  count = max(float(sums["token_count"]), 1.0)
  loss = float(sums["loss_sum"]) / count
  return {f"{prefix}_loss": loss,
          f"{prefix}_perplexity": float(jnp.exp(jnp.minimum(loss, 80.0))),
          f"{prefix}_token_accuracy": float(sums["correct_sum"]) / count,
          f"{prefix}_tokens": int(sums["token_count"])}


@dataclasses.dataclass(frozen=True)
class CausalLmObjective:
  model: nn.Module
  label_smoothing: float = 0.0  # Training only; evaluation reports the plain NLL.

  def _logits(self, params, batch, *, deterministic: bool, rng=None):
    rngs = None if deterministic else {"dropout": rng}
    return self.model.apply({"params": params}, batch["inputs"], deterministic=deterministic,
                            positions=batch.get("positions"),
                            segment_ids=batch.get("segment_ids"), rngs=rngs)

  def train_loss(self, params, batch, rng: jax.Array):
    """Mean token loss (the value differentiated) and the sums behind it."""
    logits = self._logits(params, batch, deterministic=False, rng=rng)
    sums = cross_entropy_sums(logits, batch["targets"], batch.get("weights"),
                              self.label_smoothing)
    return sums["loss_sum"] / jnp.maximum(sums["token_count"], 1.0), sums

  def eval_sums(self, params, batch) -> dict[str, jax.Array]:
    logits = self._logits(params, batch, deterministic=True)
    return cross_entropy_sums(logits, batch["targets"], batch.get("weights"))

  @staticmethod
  def summarize(sums: dict[str, float]) -> dict[str, float]:
    """Namespaced evaluation metrics from summed counts."""
    return token_metrics(sums)
