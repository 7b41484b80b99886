"""Choosing the next token from logits [B, V]. Each sampler: (logits, key) -> ids [B]."""

from typing import Callable

import jax
import jax.numpy as jnp

Sampler = Callable[[jax.Array, jax.Array], jax.Array]


def greedy(logits: jax.Array, key: jax.Array) -> jax.Array:  # pylint: disable=unused-argument
  return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def top_k_logits(logits: jax.Array, top_k: int) -> jax.Array:
  """Keeps the k largest logits of each row (ties at the k-th value kept), -inf elsewhere."""
  if top_k <= 0 or top_k >= logits.shape[-1]:
    return logits
  kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
  return jnp.where(logits < kth, -jnp.inf, logits)


def make_sampler(temperature: float, top_k: int) -> Sampler:
  """Samples from softmax(logits / temperature), restricted to the top-k tokens."""

  def sample(logits: jax.Array, key: jax.Array) -> jax.Array:
    scaled = top_k_logits(logits.astype(jnp.float32) / temperature, top_k)
    return jax.random.categorical(key, scaled, axis=-1).astype(jnp.int32)

  return sample
