"""Token-level cross-entropy that reports sums, so means are exact across batches."""

from typing import Optional

import jax
import jax.numpy as jnp
import optax


def cross_entropy_sums(logits: jax.Array, targets: jax.Array,
                       weights: Optional[jax.Array] = None) -> dict[str, jax.Array]:
  """logits [B, T, V] float32, targets [B, T] int, weights [B, T] (0 = ignore).

  Returns {'loss_sum', 'correct_sum', 'token_count'} scalars.
  """
  losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
  correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
  if weights is None:
    weights = jnp.ones_like(losses)
  weights = weights.astype(jnp.float32)
  return {"loss_sum": jnp.sum(losses * weights),
          "correct_sum": jnp.sum(correct * weights),
          "token_count": jnp.sum(weights)}
