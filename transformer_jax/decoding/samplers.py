"""Choosing the next token from logits [B, V]. Each sampler: (logits, key) -> ids [B].

Sampling restricts and reshapes the distribution in the usual order: divide the
logits by the temperature, keep the top-k tokens, then keep the nucleus (top-p)
of what is left, and draw. Temperature 0 is greedy decoding.
"""

from typing import Callable

import jax
import jax.numpy as jnp

from transformer_jax import config_choices

Sampler = Callable[[jax.Array, jax.Array], jax.Array]


def greedy(logits: jax.Array, key: jax.Array) -> jax.Array:  # pylint: disable=unused-argument
  return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def top_k_logits(logits: jax.Array, top_k: int) -> jax.Array:
  """Keeps the k largest logits of each row (ties at the k-th value kept), -inf elsewhere."""
  if top_k <= 0 or top_k >= logits.shape[-1]:
    return logits
  kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
  return jnp.where(logits < kth, -jnp.inf, logits)


def top_p_logits(logits: jax.Array, top_p: float) -> jax.Array:
  """Nucleus (Holtzman et al. 2020): keeps the fewest most likely tokens whose probability
  reaches top_p (ties at the last kept value kept), -inf elsewhere.  [B, V] -> [B, V].

  A token is kept when the probability of the tokens ranked above it is below
  top_p, so the most likely token always is.
  """
  if top_p >= 1.0:
    return logits
  descending = -jnp.sort(-logits, axis=-1)
  probabilities = jax.nn.softmax(descending, axis=-1)
  mass_above = jnp.cumsum(probabilities, axis=-1) - probabilities
  num_kept = jnp.sum(mass_above < top_p, axis=-1, keepdims=True)  # >= 1
  smallest_kept = jnp.take_along_axis(descending, num_kept - 1, axis=-1)
  return jnp.where(logits < smallest_kept, -jnp.inf, logits)


def make_sampler(temperature: float, top_k: int = 0, top_p: float = 1.0) -> Sampler:
  """Samples from softmax(logits / temperature) restricted to the top-k, then top-p, tokens.

  temperature 0: greedy. top_k 0 and top_p 1 keep the whole vocabulary.
  """
  problem = config_choices.sampling_problem(temperature, top_k, top_p)
  if problem is not None:
    raise ValueError(f"{problem[0]}: {problem[1]}")
  if temperature == 0:
    return greedy

  def sample(logits: jax.Array, key: jax.Array) -> jax.Array:
    scaled = top_k_logits(logits.astype(jnp.float32) / temperature, top_k)
    return jax.random.categorical(key, top_p_logits(scaled, top_p), axis=-1).astype(jnp.int32)

  return sample


def for_strategy(strategy: str, temperature: float, top_k: int = 0,
                 top_p: float = 1.0) -> Sampler:
  """The sampler of decode.strategy 'greedy' or 'sample' (beam search has no sampler)."""
  if strategy == "greedy":
    return greedy
  return make_sampler(temperature, top_k, top_p)
