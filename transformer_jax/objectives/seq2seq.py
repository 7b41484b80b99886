"""Sequence-to-sequence: predict target token t from the source and target tokens < t.

Batch (see `transformer_jax.data.tasks.translation_data`): 'source' [B, S],
'source_segment_ids' [B, S], 'inputs' [B, T] (<bos> + target), 'targets' [B, T]
(target + <eos>), 'weights' [B, T], 'segment_ids' [B, T]; 0 segment ids are padding.
Packed rows (data.packing=documents) also carry 'source_positions' [B, S] and
'positions' [B, T], each pair's positions from 0; segment k of a row is pair k.
Teacher forcing; label smoothing in training only.
"""

import dataclasses
from typing import ClassVar

import flax.linen as nn
import jax

from transformer_jax.objectives import objective
from transformer_jax.objectives.cross_entropy import cross_entropy_sums
from transformer_jax.objectives.objective import LossTerm


@dataclasses.dataclass(frozen=True)
class Seq2SeqObjective:
  """Mean target-token loss: loss_sum / token_count."""
  model: nn.Module  # EncoderDecoder.
  label_smoothing: float = 0.0
  loss_terms: ClassVar = (LossTerm("loss_sum", "token_count"),)

  def counts(self, batch) -> dict[str, jax.Array]:
    return {"token_count": objective.weight_count(batch["targets"], batch["weights"])}

  def sums(self, params, batch, *, training: bool, rng=None) -> dict[str, jax.Array]:
    logits = objective.apply_model(
        self.model, params, batch["source"], batch["inputs"], training=training, rng=rng,
        source_segment_ids=batch["source_segment_ids"], segment_ids=batch["segment_ids"],
        source_positions=batch.get("source_positions"),
        positions=batch.get("positions")).logits
    return cross_entropy_sums(logits, batch["targets"], batch["weights"],
                              self.label_smoothing if training else 0.0)

  def summarize(self, sums: dict[str, float]) -> dict[str, float]:
    return objective.token_metrics(sums)
