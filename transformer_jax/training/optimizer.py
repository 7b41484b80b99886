"""AdamW with linear warmup, cosine decay, global-norm clipping and masked weight decay."""

import jax
import optax

from transformer_jax.configuration import TrainConfig


def learning_rate_schedule(config: TrainConfig) -> optax.Schedule:
  """0 -> learning_rate over warmup_steps, cosine to end_learning_rate at decay_steps."""
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=config.learning_rate, warmup_steps=config.warmup_steps,
      decay_steps=config.decay_steps, end_value=config.end_learning_rate)


def decay_mask(params) -> dict:
  """Weight decay on matrices and embeddings only; never on biases or norm scales."""
  return jax.tree_util.tree_map(lambda p: p.ndim >= 2, params)


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
  parts = []
  if config.grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(config.grad_clip_norm))
  parts.append(optax.adamw(
      learning_rate_schedule(config), b1=config.adam_beta1, b2=config.adam_beta2,
      eps=config.adam_epsilon, weight_decay=config.weight_decay, mask=decay_mask))
  return optax.chain(*parts)
