"""Samplers (temperature, top-k, top-p and their combination) and the cached sampling loop."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decoding_models import BASE, decoder_and_params
from transformer_jax.decoding import kv_decoding, model_steps, samplers

PROBABILITIES = np.array([0.15, 0.5, 0.05, 0.3])  # Sorted: tokens 1, 3, 0, 2.
LOGITS = jnp.log(jnp.asarray([PROBABILITIES], jnp.float32))


def _kept(logits):
  return set(np.flatnonzero(np.isfinite(np.asarray(logits)[0])).tolist())


@pytest.mark.parametrize("top_p, kept", [
    (0.4, {1}),  # The most likely token alone reaches 0.4.
    (0.7, {1, 3}),  # 0.5 < 0.7 <= 0.8.
    (0.85, {1, 3, 0}),
    (0.99, {0, 1, 2, 3}),
    (1.0, {0, 1, 2, 3}),
])
def test_top_p_keeps_the_smallest_set_reaching_p(top_p, kept):
  filtered = samplers.top_p_logits(LOGITS, top_p)
  assert _kept(filtered) == kept
  np.testing.assert_array_equal(np.asarray(filtered)[0, sorted(kept)],
                                np.asarray(LOGITS)[0, sorted(kept)])


def test_top_p_keeps_ties_at_the_boundary_and_works_row_by_row():
  logits = jnp.log(jnp.asarray([[0.3, 0.4, 0.3], [0.8, 0.1, 0.1]], jnp.float32))
  filtered = np.asarray(samplers.top_p_logits(logits, 0.5))
  np.testing.assert_array_equal(np.isfinite(filtered), [[True, True, True],
                                                         [True, False, False]])


def _draws(sampler, logits, count=4000):
  keys = jax.random.split(jax.random.key(0), count)
  return np.asarray(jax.jit(jax.vmap(sampler, in_axes=(None, 0)))(logits, keys))[:, 0]


def test_top_p_never_samples_outside_the_nucleus():
  logits = jnp.asarray(np.random.default_rng(0).normal(0, 2, (1, 12)), jnp.float32)
  probabilities = np.asarray(jax.nn.softmax(logits))[0]
  order = np.argsort(-probabilities)
  mass_above = np.cumsum(probabilities[order]) - probabilities[order]
  nucleus = set(order[mass_above < 0.8].tolist())
  assert 1 < len(nucleus) < 12
  draws = _draws(samplers.make_sampler(temperature=1.0, top_p=0.8), logits)
  assert set(draws.tolist()) == nucleus  # Every nucleus token appears, no other.
  renormalised = probabilities / probabilities[sorted(nucleus)].sum()
  for token in nucleus:
    assert abs((draws == token).mean() - renormalised[token]) < 0.03


def test_temperature_then_top_k_then_top_p():
  probabilities = jnp.asarray([[0.4, 0.25, 0.2, 0.15]], jnp.float32)
  logits = jnp.log(probabilities)
  # Top-p alone at 0.7 keeps 3 tokens (0.4 + 0.25 < 0.7); after top-3 renormalises,
  # 0.65 / 0.85 > 0.7 and it keeps 2: top-k applies first.
  assert _kept(samplers.top_p_logits(logits, 0.7)) == {0, 1, 2}
  draws = _draws(samplers.make_sampler(temperature=1.0, top_k=3, top_p=0.7), logits)
  assert set(draws.tolist()) == {0, 1}
  assert abs((draws == 0).mean() - 0.4 / 0.65) < 0.03
  # Temperature 2 flattens first: p ∝ sqrt(p), still tokens 0 and 1.
  draws = _draws(samplers.make_sampler(temperature=2.0, top_k=3, top_p=0.7), logits)
  assert set(draws.tolist()) == {0, 1}
  assert abs((draws == 0).mean() - 0.4**0.5 / (0.4**0.5 + 0.25**0.5)) < 0.03


def test_temperature_zero_is_greedy_and_invalid_options_name_the_field():
  assert samplers.make_sampler(temperature=0.0) is samplers.greedy
  for options, field in ((dict(temperature=-1.0), "decode.temperature"),
                         (dict(temperature=1.0, top_k=-1), "decode.top_k"),
                         (dict(temperature=1.0, top_p=0.0), "decode.top_p"),
                         (dict(temperature=1.0, top_p=1.5), "decode.top_p")):
    with pytest.raises(ValueError, match=field):
      samplers.make_sampler(**options)


@functools.lru_cache(maxsize=None)
def _decode(sampler):
  return jax.jit(functools.partial(model_steps.generate, decoder_and_params(BASE)[0],
                                   sampler=sampler, max_new_tokens=7))


@pytest.fixture(scope="module")
def model_inputs():
  _, params = decoder_and_params(BASE, seed=3, stddev=1.0)
  return (params,) + kv_decoding.left_pad([[4, 2, 7], [1, 5], [9]], 3)


def test_top_1_near_zero_temperature_and_a_tiny_nucleus_are_greedy(model_inputs):
  greedy, _ = _decode(samplers.greedy)(*model_inputs, key=jax.random.key(0))
  for sampler in (samplers.make_sampler(temperature=1.0, top_k=1),
                  samplers.make_sampler(temperature=1e-4),
                  samplers.make_sampler(temperature=1.0, top_p=1e-6)):
    for seed in (0, 1):
      sampled, _ = _decode(sampler)(*model_inputs, key=jax.random.key(seed))
      np.testing.assert_array_equal(sampled, greedy)


def test_a_seed_fixes_the_sample(model_inputs):
  run = _decode(samplers.make_sampler(temperature=1.0))
  first, _ = run(*model_inputs, key=jax.random.key(7))
  np.testing.assert_array_equal(run(*model_inputs, key=jax.random.key(7))[0], first)
  others = [run(*model_inputs, key=jax.random.key(seed))[0] for seed in (8, 9)]
  assert any(not np.array_equal(other, first) for other in others)


def _successor_step_fn(vocab_size, calls):
  """Logits that make (token + 1) mod V the clear favourite; each run appends to calls."""
  def step_fn(tokens, cache, step):  # pylint: disable=unused-argument
    jax.debug.callback(lambda: calls.append(1), ordered=True)
    return 10.0 * jax.nn.one_hot((tokens + 1) % vocab_size, vocab_size), cache
  return step_fn


def test_the_loop_stops_rows_at_stop_tokens_pads_them_and_ends_early():
  calls = []
  run = jax.jit(lambda logits: kv_decoding.sample_loop(
      _successor_step_fn(10, calls), samplers.greedy, logits, jnp.zeros(3, jnp.int32),
      max_new_tokens=6, key=jax.random.key(0), stop_tokens=(3, 8), pad_token=-1))
  tokens, lengths = run(10.0 * jax.nn.one_hot(jnp.asarray([1, 6, 3]), 10))
  assert tokens.tolist() == [[1, 2, 3, -1, -1, -1],
                             [6, 7, 8, -1, -1, -1],
                             [3, -1, -1, -1, -1, -1]]
  assert lengths.tolist() == [3, 3, 1]
  assert len(calls) == 2  # Tokens 2 and 3 of the longest row; then every row had stopped.
  calls.clear()
  tokens, lengths = run(10.0 * jax.nn.one_hot(jnp.asarray([4, 9, 0]), 10))
  assert tokens.tolist() == [[4, 5, 6, 7, 8, -1], [9, 0, 1, 2, 3, -1], [0, 1, 2, 3, -1, -1]]
  assert lengths.tolist() == [5, 5, 4]
  assert len(calls) == 4
