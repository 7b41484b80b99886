"""Samplers, the decoding loop and the sliding-window step function."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import init_decoder
from transformer_jax.config_sections import ModelConfig
from transformer_jax.decoding import generate, samplers

LOGITS = jnp.array([[1.0, 5.0, 3.0, 4.0, 2.0],
                    [0.5, -1.0, 2.5, 2.0, 0.0]])


def test_greedy_is_argmax():
  ids = samplers.greedy(LOGITS, jax.random.key(0))
  assert ids.dtype == jnp.int32
  assert ids.tolist() == [1, 2]


def test_top_k_logits_keeps_exactly_k():
  kept = samplers.top_k_logits(LOGITS, 2)
  inf = -np.inf
  np.testing.assert_array_equal(kept, [[inf, 5.0, inf, 4.0, inf],
                                       [inf, inf, 2.5, 2.0, inf]])
  assert (np.isfinite(samplers.top_k_logits(LOGITS, 3)).sum(axis=-1) == 3).all()


def test_top_k_edge_cases():
  np.testing.assert_array_equal(samplers.top_k_logits(LOGITS, 0), LOGITS)  # 0: keep all.
  np.testing.assert_array_equal(samplers.top_k_logits(LOGITS, 5), LOGITS)
  np.testing.assert_array_equal(samplers.top_k_logits(LOGITS, 9), LOGITS)
  ties = samplers.top_k_logits(jnp.array([[1.0, 3.0, 3.0, 0.0]]), 1)
  np.testing.assert_array_equal(ties, [[-np.inf, 3.0, 3.0, -np.inf]])  # Ties are kept.


def test_top_1_sampling_is_greedy():
  logits = jax.random.normal(jax.random.key(1), (16, 50))
  sample = samplers.make_sampler(temperature=0.8, top_k=1)
  for seed in range(5):
    np.testing.assert_array_equal(sample(logits, jax.random.key(seed)),
                                  samplers.greedy(logits, None))


def test_sampling_follows_the_distribution():
  # Only tokens 1 and 3 survive top-2; softmax([5, 4]) gives token 1 ~73%.
  sample = jax.jit(jax.vmap(samplers.make_sampler(temperature=1.0, top_k=2),
                            in_axes=(None, 0)))
  ids = np.asarray(sample(LOGITS[:1], jax.random.split(jax.random.key(0), 4000)))[:, 0]
  assert set(ids.tolist()) == {1, 3}
  assert abs((ids == 1).mean() - 1 / (1 + np.exp(-1.0))) < 0.03


def _successor_step_fn(vocab_size):
  """Logits that make (previous token + 1) mod V the clear favourite."""
  def step_fn(tokens, index):
    previous = jax.lax.dynamic_index_in_dim(tokens, index - 1, axis=1, keepdims=False)
    return 10.0 * jax.nn.one_hot((previous + 1) % vocab_size, vocab_size)
  return step_fn


def test_generate_with_a_hand_built_step_fn():
  buffer = jnp.array([[2, 0, 0, 0, 0, 0, 0],
                      [4, 9, 9, 9, 9, 9, 9]], jnp.int32)
  run = jax.jit(lambda buffer, prompt_length: generate.generate(
      _successor_step_fn(5), samplers.greedy, buffer, prompt_length, 5, jax.random.key(0)))
  out = run(buffer, 1)
  # Positions 1..5 are written; position 6 is past prompt_length + 5 and left alone.
  assert out.tolist() == [[2, 3, 4, 0, 1, 2, 0],
                          [4, 0, 1, 2, 3, 4, 9]]
  # The prompt length is traced: one compiled program serves both lengths.
  assert run(buffer, 2).tolist() == [[2, 0, 1, 2, 3, 4, 0],
                                     [4, 9, 0, 1, 2, 3, 4]]


MODEL = ModelConfig(num_layers=1, num_heads=2, model_dim=16, mlp_dim=32, max_length=4,
                    dropout_rate=0.0, use_bias=False, dtype="float32", vocab_size=7)


@pytest.fixture(scope="module")
def apply_logits():
  model, params = init_decoder(MODEL, seed=3)
  return jax.jit(lambda tokens: model.apply({"params": params}, tokens,
                                            deterministic=True).logits)


@pytest.fixture(scope="module")
def step_fn(apply_logits):
  return jax.jit(generate.windowed_step_fn(apply_logits, MODEL.max_length))


@pytest.mark.parametrize("index", range(1, 10))
def test_windowed_step_fn_matches_full_forward(apply_logits, step_fn, index):
  tokens = jnp.array([[3, 1, 4, 1, 5, 2, 6, 5, 3, 5]], jnp.int32)  # 10 > window 4.
  got = step_fn(tokens, index)
  # The logits for position `index` given the last (at most) 4 tokens before it; the
  # tokens at and after `index` in the buffer must not matter.
  context = tokens[:, max(index - MODEL.max_length, 0):index]
  np.testing.assert_allclose(got, apply_logits(context)[:, -1], rtol=1e-5, atol=1e-5)
  scrambled = tokens.at[:, index:].set(0)
  np.testing.assert_array_equal(step_fn(scrambled, index), got)


def test_greedy_generation_equals_a_python_loop(apply_logits, step_fn):
  prompt, num_new = [3, 1], 7  # Runs past the window of 4.
  buffer = jnp.zeros((1, 9), jnp.int32).at[0, :2].set(jnp.array(prompt))
  out = generate.generate(step_fn, samplers.greedy, buffer, len(prompt), num_new,
                          jax.random.key(0))
  expected = list(prompt)
  for _ in range(num_new):
    context = jnp.array([expected[-MODEL.max_length:]], jnp.int32)
    expected.append(int(jnp.argmax(apply_logits(context)[0, -1])))
  assert out[0].tolist() == expected


def test_the_kv_cached_loop_agrees_with_the_window_within_the_context(apply_logits, step_fn):
  from transformer_jax.decoding import model_steps  # pylint: disable=import-outside-toplevel
  model, params = init_decoder(MODEL, seed=3)
  prompt, num_new = [3, 1], 3  # 2 + 3 - 1 = 4 cache slots: the whole context.
  buffer = jnp.zeros((1, 5), jnp.int32).at[0, :2].set(jnp.array(prompt))
  windowed = jax.jit(lambda buffer: generate.generate(
      step_fn, samplers.greedy, buffer, len(prompt), num_new, jax.random.key(0)))(buffer)
  cached, _ = jax.jit(lambda prompts: model_steps.generate(
      model, params, prompts, jnp.array([2]), sampler=samplers.greedy, max_new_tokens=num_new,
      key=jax.random.key(0)))(buffer[:, :2])
  assert cached[0].tolist() == windowed[0, 2:].tolist()
