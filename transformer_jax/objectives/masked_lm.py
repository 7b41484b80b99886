"""BERT pretraining: masked language modelling plus next-sentence prediction.

Batch (see `transformer_jax.data.batches.sentence_pairs`): 'inputs' [B, T] (corrupted),
'targets' [B, T] (original tokens), 'weights' [B, T] (1 where a token must be
predicted), 'token_types' [B, T], 'segment_ids' [B, T] (0 = padding), 'is_next' [B].
The loss is the sum of the two means, as in BERT.
"""

import dataclasses
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.objectives import objective
from transformer_jax.objectives.cross_entropy import cross_entropy_sums
from transformer_jax.objectives.objective import LossTerm


def _real_rows(batch) -> jax.Array:
  """[B, 1]: 1 for a real row; a row whose first token is padding is filler added to
  complete a batch."""
  return (batch["segment_ids"][:, :1] != 0).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class MaskedLmObjective:
  """Masked-token mean loss plus next-sentence mean loss."""
  model: nn.Module  # BertPretraining.
  loss_terms: ClassVar = (LossTerm("mlm_loss_sum", "mlm_token_count"),
                          LossTerm("nsp_loss_sum", "nsp_token_count"))

  def counts(self, batch) -> dict[str, jax.Array]:
    return {"mlm_token_count": objective.weight_count(batch["targets"], batch["weights"]),
            "nsp_token_count": jnp.sum(_real_rows(batch))}

  def sums(self, params, batch, *, training: bool, rng=None) -> dict[str, jax.Array]:
    out = objective.apply_model(self.model, params, batch["inputs"], training=training,
                                rng=rng, token_types=batch["token_types"],
                                segment_ids=batch["segment_ids"])
    mlm = cross_entropy_sums(out.logits, batch["targets"], batch["weights"])
    nsp = cross_entropy_sums(out.next_sentence_logits[:, None, :], batch["is_next"][:, None],
                             _real_rows(batch))
    return {**{f"mlm_{k}": v for k, v in mlm.items()},
            **{f"nsp_{k}": v for k, v in nsp.items()}}

  def summarize(self, sums: dict[str, float]) -> dict[str, float]:
    """eval_loss (MLM + NSP), eval_mlm_* and eval_nsp_* from summed counts."""
    def part(prefix):
      return {key: sums[f"{prefix}_{key}"] for key in ("loss_sum", "correct_sum", "token_count")}
    mlm = objective.token_metrics(part("mlm"), "eval_mlm")
    nsp = objective.token_metrics(part("nsp"), "eval_nsp")
    return {"eval_loss": mlm["eval_mlm_loss"] + nsp["eval_nsp_loss"],
            "eval_mlm_loss": mlm["eval_mlm_loss"],
            "eval_mlm_perplexity": mlm["eval_mlm_perplexity"],
            "eval_mlm_accuracy": mlm["eval_mlm_token_accuracy"],
            "eval_mlm_tokens": mlm["eval_mlm_tokens"],
            "eval_nsp_loss": nsp["eval_nsp_loss"],
            "eval_nsp_accuracy": nsp["eval_nsp_token_accuracy"],
            "eval_nsp_examples": nsp["eval_nsp_tokens"]}
