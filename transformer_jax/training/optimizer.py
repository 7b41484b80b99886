"""AdamW with linear warmup, cosine decay, global-norm clipping and masked weight decay."""

import jax
import optax

from transformer_jax.config_sections import TrainConfig


def learning_rate_schedule(config: TrainConfig) -> optax.Schedule:
  """0 -> learning_rate over warmup_steps, cosine to end_learning_rate at decay_steps."""
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=config.learning_rate, warmup_steps=config.warmup_steps,
      decay_steps=config.decay_steps, end_value=config.end_learning_rate)


_NEVER_DECAYED = ("bias", "scale")


def _name(path) -> str:
  """The parameter's own name: its last dict key (boxed params end in `.value`)."""
  keys = [k.key for k in path if isinstance(k, jax.tree_util.DictKey)]
  return keys[-1] if keys else ""


def decay_mask(params) -> dict:
  """Weight decay on matrices and embeddings only; never on biases or norm scales.

  Rank alone is not enough: attention biases are [heads, head_dim].
  """
  return jax.tree_util.tree_map_with_path(
      lambda path, p: p.ndim >= 2 and _name(path) not in _NEVER_DECAYED, params)


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
  parts = []
  if config.grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(config.grad_clip_norm))
  parts.append(optax.adamw(
      learning_rate_schedule(config), b1=config.adam_beta1, b2=config.adam_beta2,
      eps=config.adam_epsilon, weight_decay=config.weight_decay, mask=decay_mask))
  return optax.chain(*parts)
