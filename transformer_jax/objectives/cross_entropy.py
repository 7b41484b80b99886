"""Token-level cross-entropy that reports sums, so means are exact across batches."""

from typing import Optional

import jax
import jax.numpy as jnp


def cross_entropy_sums(logits: jax.Array, targets: jax.Array,
                       weights: Optional[jax.Array] = None,
                       label_smoothing: float = 0.0) -> dict[str, jax.Array]:
  """logits [B, T, V] float32, targets [B, T] int, weights [B, T] (0 = ignore).

  label_smoothing ε: the target distribution is (1 - ε)·one_hot + ε/V (Szegedy et
  al.; Vaswani et al. use ε = 0.1), so the loss is -(1 - ε)·log p_y - ε·mean_v log p_v.
  It is not shifted to a minimum of zero: with ε = 0 it is the plain negative
  log-likelihood, and evaluation always uses ε = 0.
  Returns {'loss_sum', 'correct_sum', 'token_count'} scalars.
  """
  log_normalizer = jax.nn.logsumexp(logits, axis=-1)
  target_logits = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
  losses = log_normalizer - target_logits
  if label_smoothing:
    mean_log_probability = jnp.mean(logits, axis=-1) - log_normalizer
    losses = (1.0 - label_smoothing) * losses - label_smoothing * mean_log_probability
  correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
  if weights is None:
    weights = jnp.ones_like(losses)
  weights = weights.astype(jnp.float32)
  return {"loss_sum": jnp.sum(losses * weights),
          "correct_sum": jnp.sum(correct * weights),
          "token_count": jnp.sum(weights)}
