"""Cached decoding: a prefill pass fills a KV cache, then a `jax.lax.while_loop` extends
it one token per step. The loop sees only a step function and a sampler.

  step_fn(tokens [B] int32, cache, step [] int32) -> (logits [B, V] float32, cache)
feeds the token chosen at new-token index `step` (0 = the first new token) and
returns the logits for the token after it. The cache is any pytree the step
function threads; the builders in `transformer_jax.decoding.model_steps` make
step functions for the repository's models.

Ragged batches: prompts are LEFT-padded to one bucket length P (`left_pad`), so
every row's last prompt token sits in slot P - 1 and the prefill's last logits
start every row. Each row's positions count from its first real token, and the
padding slots are marked invalid in the cache, so a row decodes as it would alone.
Every shape depends only on (B, P, max_new_tokens): prompts of one bucket share
one compiled program.

Context limit: the cache has P + max_new_tokens - 1 slots (the last new token is
never fed back) and must fit the model's max_length; `check_context` raises
before anything compiles. Continuing beyond the model's context needs the
uncached sliding window of `transformer_jax.decoding.generate`.
"""

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from transformer_jax.decoding.samplers import Sampler

StepFn = Callable[[jax.Array, Any, jax.Array], tuple[jax.Array, Any]]


def left_pad(prompts: Sequence[Sequence[int]], bucket_length: int,
             pad_token: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Token lists -> (tokens [B, P] int32 padded on the left, lengths [B] int32)."""
  lengths = np.array([len(prompt) for prompt in prompts], np.int32)
  if len(prompts) == 0 or lengths.min() < 1 or lengths.max() > bucket_length:
    raise ValueError(f"prompts need 1 to bucket_length={bucket_length} tokens each, "
                     f"got lengths {lengths.tolist()}")
  tokens = np.full((len(prompts), bucket_length), pad_token, np.int32)
  for row, prompt in enumerate(prompts):
    tokens[row, bucket_length - len(prompt):] = prompt
  return tokens, lengths


def prompt_positions(bucket_length: int, lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Left-padded rows: (positions [B, P] counted from each row's first real token,
  0 on padding; segment_ids [B, P], 1 on real tokens, 0 on padding)."""
  positions = jnp.arange(bucket_length)[None, :] - (bucket_length - lengths)[:, None]
  return jnp.maximum(positions, 0), (positions >= 0).astype(jnp.int32)


def check_context(bucket_length: int, max_new_tokens: int, max_length: int) -> int:
  """The cache length P + max_new_tokens - 1, or ValueError when it exceeds max_length."""
  if max_new_tokens < 1:
    raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
  cache_length = bucket_length + max_new_tokens - 1
  if cache_length > max_length:
    raise ValueError(
        f"prompt bucket {bucket_length} + max_new_tokens {max_new_tokens} - 1 = {cache_length} "
        f"exceeds model.max_length={max_length}, the KV cache's limit: shorten the prompt "
        f"or max_new_tokens, or use the sliding window of decoding/generate.py")
  return cache_length


def is_stop(tokens: jax.Array, stop_tokens: Sequence[int]) -> jax.Array:
  """tokens [...] -> bool [...]: the token is one of stop_tokens."""
  stop = jnp.zeros(tokens.shape, bool)
  for token in stop_tokens:
    stop = stop | (tokens == token)
  return stop


def sample_loop(step_fn: StepFn, sampler: Sampler, logits: jax.Array, cache: Any, *,
                max_new_tokens: int, key: jax.Array, stop_tokens: Sequence[int] = (),
                pad_token: int = 0) -> tuple[jax.Array, jax.Array]:
  """Samples max_new_tokens tokens per row, starting from the prefill's logits [B, V].

  A row stops after emitting one of stop_tokens (kept in its output); its later
  tokens are pad_token, and the loop ends early once every row has stopped.
  Step i draws with `fold_in(key, i)`: a seed fixes the output.
  Returns (tokens [B, max_new_tokens] int32, lengths [B] int32: tokens emitted,
  the stop token included).
  """
  batch = logits.shape[0]
  tokens = jnp.full((batch, max_new_tokens), pad_token, jnp.int32)

  def emit(step, tokens, lengths, logits):
    chosen = sampler(logits, jax.random.fold_in(key, step))
    stopped = lengths < max_new_tokens  # Rows that stopped at an earlier step.
    chosen = jnp.where(stopped, pad_token, chosen)
    tokens = jax.lax.dynamic_update_index_in_dim(tokens, chosen, step, axis=1)
    lengths = jnp.where(~stopped & is_stop(chosen, stop_tokens), step + 1, lengths)
    return tokens, lengths

  lengths = jnp.full((batch,), max_new_tokens, jnp.int32)
  tokens, lengths = emit(0, tokens, lengths, logits)

  def running(carry):
    step, _, lengths, _ = carry
    return (step < max_new_tokens) & jnp.any(lengths == max_new_tokens)

  def body(carry):
    step, tokens, lengths, cache = carry
    previous = jax.lax.dynamic_index_in_dim(tokens, step - 1, axis=1, keepdims=False)
    logits, cache = step_fn(previous, cache, step - 1)
    tokens, lengths = emit(step, tokens, lengths, logits)
    return step + 1, tokens, lengths, cache

  _, tokens, lengths, _ = jax.lax.while_loop(
      running, body, (jnp.asarray(1, jnp.int32), tokens, lengths, cache))
  return tokens, lengths
