"""An in-process `Trainer` on a 1-layer decoder whose batches can carry a NaN at chosen steps.

For loop tests that need to know what happens at one step (a NaN, a failed save)
without a subprocess: batches are random tokens, a pure function of the step,
plus two [B] float columns the objective adds to the loss and to its gradient
(0 normally: `x + 0.0` and `g * 1.0` change no bit; NaN at a poisoned step).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Iterable

import jax
import jax.numpy as jnp
import numpy as np

from configs import clm
from transformer_jax import config_sections, configuration
from transformer_jax.models.decoder import Decoder
from transformer_jax.objectives.causal_lm import CausalLmObjective
from transformer_jax.training import partitioning
from transformer_jax.training.loop import Trainer

VOCAB_SIZE, LENGTH, BATCH_SIZE = 16, 8, 4
POISON_LOSS, POISON_GRADIENT = "poison_loss", "poison_gradient"


@jax.custom_vjp
def _scale_gradient(x, scale):
  return x


def _scale_gradient_forward(x, scale):
  return x, scale


def _scale_gradient_backward(scale, gradient):
  return gradient * scale, jnp.zeros_like(scale)


_scale_gradient.defvjp(_scale_gradient_forward, _scale_gradient_backward)


def _clean(batch: dict) -> dict:
  return {k: v for k, v in batch.items() if k not in (POISON_LOSS, POISON_GRADIENT)}


@dataclasses.dataclass(frozen=True)
class PoisonedObjective:
  """The causal LM objective, plus the batch's poison columns: NaN loss or NaN gradients
  (in training; the loss sum carries them, so the loss does too)."""
  objective: Any
  loss_terms: ClassVar = CausalLmObjective.loss_terms

  def counts(self, batch):
    return self.objective.counts(_clean(batch))

  def sums(self, params, batch, *, training, rng=None):
    sums = dict(self.objective.sums(params, _clean(batch), training=training, rng=rng))
    if training:
      loss_sum = _scale_gradient(sums["loss_sum"], 1.0 + jnp.sum(batch[POISON_GRADIENT]))
      sums["loss_sum"] = loss_sum + jnp.sum(batch[POISON_LOSS])
    return sums

  def summarize(self, sums):
    return self.objective.summarize(sums)


def train_config(**overrides) -> config_sections.TrainConfig:
  """The tiny preset's training section with `overrides` (e.g. num_steps=12)."""
  train = configuration.validate(clm.get_config("tiny")).train
  return dataclasses.replace(train, batch_size=BATCH_SIZE, **overrides)


def make_trainer(workdir, config: config_sections.TrainConfig) -> Trainer:
  model_cfg = dataclasses.replace(configuration.validate(clm.get_config("tiny")).model,
                                  num_layers=1, max_length=LENGTH, vocab_size=VOCAB_SIZE)
  model = Decoder(config=model_cfg)
  example = jnp.zeros((1, LENGTH), jnp.int32)
  mesh = partitioning.make_mesh(config_sections.MeshConfig(data_axis_size=-1, num_cpu_devices=0),
                                config.batch_size)
  return Trainer(objective=PoisonedObjective(CausalLmObjective(model)),
                 init_params=lambda key: model.init(key, example, deterministic=True)["params"],
                 config=config, mesh=mesh, workdir=str(workdir),
                 checkpoint_metadata={"model": dataclasses.asdict(model_cfg)})


def batch_at(index: int, poisoned: Iterable[int] = (), poison: str = POISON_LOSS) -> dict:
  """The batch of update `index + 1` (metrics.jsonl numbers updates from 1); NaN in the
  `poison` column when that number is in `poisoned`."""
  tokens = np.random.default_rng(index).integers(0, VOCAB_SIZE, (BATCH_SIZE, LENGTH + 1))
  batch = {"inputs": tokens[:, :-1].astype(np.int32), "targets": tokens[:, 1:].astype(np.int32),
           POISON_LOSS: np.zeros(BATCH_SIZE, np.float32),
           POISON_GRADIENT: np.zeros(BATCH_SIZE, np.float32)}
  if index + 1 in set(poisoned):
    batch[poison][0] = np.nan
  return batch


def eval_batches() -> list[dict]:
  return [batch_at(10_000)]
