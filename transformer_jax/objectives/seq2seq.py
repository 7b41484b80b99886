"""Sequence-to-sequence: predict target token t from the source and target tokens < t.

Batch (see `transformer_jax.data.translation_data`): 'source' [B, S],
'source_segment_ids' [B, S], 'inputs' [B, T] (<bos> + target), 'targets' [B, T]
(target + <eos>), 'weights' [B, T], 'segment_ids' [B, T]; 0 segment ids are padding.
Packed rows (data.packing=documents) also carry 'source_positions' [B, S] and
'positions' [B, T], each pair's positions from 0; segment k of a row is pair k.
Teacher forcing; label smoothing in training only.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.objectives.causal_lm import token_metrics
from transformer_jax.objectives.cross_entropy import cross_entropy_sums


@dataclasses.dataclass(frozen=True)
class Seq2SeqObjective:
  model: nn.Module  # EncoderDecoder.
  label_smoothing: float = 0.0

  def _logits(self, params, batch, *, deterministic: bool, rng=None):
    rngs = None if deterministic else {"dropout": rng}
    return self.model.apply({"params": params}, batch["source"], batch["inputs"],
                            deterministic=deterministic,
                            source_segment_ids=batch["source_segment_ids"],
                            segment_ids=batch["segment_ids"],
                            source_positions=batch.get("source_positions"),
                            positions=batch.get("positions"), rngs=rngs)

  def train_loss(self, params, batch, rng: jax.Array):
    logits = self._logits(params, batch, deterministic=False, rng=rng)
    sums = cross_entropy_sums(logits, batch["targets"], batch["weights"], self.label_smoothing)
    return sums["loss_sum"] / jnp.maximum(sums["token_count"], 1.0), sums

  def eval_sums(self, params, batch) -> dict[str, jax.Array]:
    logits = self._logits(params, batch, deterministic=True)
    return cross_entropy_sums(logits, batch["targets"], batch["weights"])

  @staticmethod
  def summarize(sums: dict[str, float]) -> dict[str, float]:
    return token_metrics(sums)
