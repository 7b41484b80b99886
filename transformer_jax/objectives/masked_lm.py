"""BERT pretraining: masked language modelling plus next-sentence prediction.

Batch (see `transformer_jax.data.sentence_pairs`): 'inputs' [B, T] (corrupted),
'targets' [B, T] (original tokens), 'weights' [B, T] (1 where a token must be
predicted), 'token_types' [B, T], 'segment_ids' [B, T] (0 = padding), 'is_next' [B].
The loss is the sum of the two means, as in BERT.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.objectives.causal_lm import token_metrics
from transformer_jax.objectives.cross_entropy import cross_entropy_sums


@dataclasses.dataclass(frozen=True)
class MaskedLmObjective:
  model: nn.Module  # BertPretraining.

  def _sums(self, params, batch, *, deterministic: bool, rng=None) -> dict[str, jax.Array]:
    rngs = None if deterministic else {"dropout": rng}
    outputs = self.model.apply({"params": params}, batch["inputs"],
                               deterministic=deterministic,
                               token_types=batch["token_types"],
                               segment_ids=batch["segment_ids"], rngs=rngs)
    mlm = cross_entropy_sums(outputs["mlm_logits"], batch["targets"], batch["weights"])
    # A row whose first token is padding is filler added to complete a batch.
    real_rows = (batch["segment_ids"][:, :1] != 0).astype(jnp.float32)
    nsp = cross_entropy_sums(outputs["nsp_logits"][:, None, :], batch["is_next"][:, None],
                             real_rows)
    return {**{f"mlm_{k}": v for k, v in mlm.items()},
            **{f"nsp_{k}": v for k, v in nsp.items()}}

  def train_loss(self, params, batch, rng: jax.Array):
    sums = self._sums(params, batch, deterministic=False, rng=rng)
    mlm_loss = sums["mlm_loss_sum"] / jnp.maximum(sums["mlm_token_count"], 1.0)
    nsp_loss = sums["nsp_loss_sum"] / jnp.maximum(sums["nsp_token_count"], 1.0)
    return mlm_loss + nsp_loss, sums

  def eval_sums(self, params, batch) -> dict[str, jax.Array]:
    return self._sums(params, batch, deterministic=True)

  @staticmethod
  def summarize(sums: dict[str, float]) -> dict[str, float]:
    """eval_loss (MLM + NSP), eval_mlm_* and eval_nsp_* from summed counts."""
    def part(prefix):
      return {key: sums[f"{prefix}_{key}"] for key in ("loss_sum", "correct_sum", "token_count")}
    mlm, nsp = token_metrics(part("mlm"), "eval_mlm"), token_metrics(part("nsp"), "eval_nsp")
    return {"eval_loss": mlm["eval_mlm_loss"] + nsp["eval_nsp_loss"],
            "eval_mlm_loss": mlm["eval_mlm_loss"],
            "eval_mlm_perplexity": mlm["eval_mlm_perplexity"],
            "eval_mlm_accuracy": mlm["eval_mlm_token_accuracy"],
            "eval_mlm_tokens": mlm["eval_mlm_tokens"],
            "eval_nsp_loss": nsp["eval_nsp_loss"],
            "eval_nsp_accuracy": nsp["eval_nsp_token_accuracy"],
            "eval_nsp_examples": nsp["eval_nsp_tokens"]}
