"""The uncached decoding loop: it sees only a `step_fn` and a sampler, and runs in one jit.

step_fn(tokens [B, N], index) -> logits [B, V] for the token at `index`, given
tokens[:, :index]. The loop writes each chosen token into a fixed buffer, so one
compiled program serves every prompt of the same padded length.
Each step re-runs the model over a window of tokens. The KV-cached loop of
`kv_decoding` (with `model_steps`) is much faster within the model's context;
this one remains for continuing past it, where the window slides.
"""

from typing import Callable

import jax
import jax.numpy as jnp

from transformer_jax.decoding.samplers import Sampler

StepFn = Callable[[jax.Array, jax.Array], jax.Array]


def generate(step_fn: StepFn, sampler: Sampler, buffer: jax.Array, prompt_length: jax.Array,
             num_new_tokens: int, key: jax.Array) -> jax.Array:
  """Fills buffer[:, prompt_length : prompt_length + num_new_tokens]. buffer [B, N] int32."""

  def body(index, carry):
    tokens, key = carry
    key, step_key = jax.random.split(key)
    next_tokens = sampler(step_fn(tokens, index), step_key)
    return jax.lax.dynamic_update_index_in_dim(tokens, next_tokens, index, axis=1), key

  tokens, _ = jax.lax.fori_loop(prompt_length, prompt_length + num_new_tokens, body,
                                (buffer, key))
  return tokens


def windowed_step_fn(apply_logits: Callable[[jax.Array], jax.Array], window: int) -> StepFn:
  """A step_fn that re-runs the model over the last `window` tokens (no KV cache).

  apply_logits: tokens [B, window] -> logits [B, window, V]. Beyond the model's
  context the window slides, as nanoGPT's sampler crops to the block size.
  Positions past `index` in the window are not yet written; the causal mask
  keeps them from influencing the logits read at `index - 1`.
  """

  def step_fn(tokens: jax.Array, index: jax.Array) -> jax.Array:
    start = jnp.clip(index - window, 0, tokens.shape[1] - window)
    logits = apply_logits(jax.lax.dynamic_slice_in_dim(tokens, start, window, axis=1))
    return jax.lax.dynamic_index_in_dim(logits, index - 1 - start, axis=1, keepdims=False)

  return step_fn
