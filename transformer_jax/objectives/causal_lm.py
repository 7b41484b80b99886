"""Causal language modelling: predict token t+1 from tokens 0..t.

Batch: {'inputs': [B, T], 'targets': [B, T]} int32, optionally 'weights' [B, T],
'positions' [B, T] and 'segment_ids' [B, T] for packed rows.
"""

import dataclasses
from typing import ClassVar

import flax.linen as nn
import jax

from transformer_jax.objectives import objective
from transformer_jax.objectives.cross_entropy import cross_entropy_sums
from transformer_jax.objectives.objective import LossTerm


@dataclasses.dataclass(frozen=True)
class CausalLmObjective:
  """Mean token loss: loss_sum / token_count."""
  model: nn.Module
  label_smoothing: float = 0.0  # Training only; evaluation reports the plain NLL.
  loss_terms: ClassVar = (LossTerm("loss_sum", "token_count"),)

  def counts(self, batch) -> dict[str, jax.Array]:
    return {"token_count": objective.weight_count(batch["targets"], batch.get("weights"))}

  def sums(self, params, batch, *, training: bool, rng=None) -> dict[str, jax.Array]:
    logits = objective.apply_model(self.model, params, batch["inputs"], training=training,
                                   rng=rng, positions=batch.get("positions"),
                                   segment_ids=batch.get("segment_ids")).logits
    return cross_entropy_sums(logits, batch["targets"], batch.get("weights"),
                              self.label_smoothing if training else 0.0)

  def summarize(self, sums: dict[str, float]) -> dict[str, float]:
    return objective.token_metrics(sums)
