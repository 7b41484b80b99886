"""KV-cached decoding equals the full forward pass: every variant, ragged batches, seq2seq."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decoding_models import BASE, SEQ2SEQ, decoder_and_params, full_forward, full_logits
from transformer_jax.decoding import kv_decoding, model_steps, samplers
from transformer_jax.models import kv_cache
from transformer_jax.models.decoder import Decoder
from transformer_jax.models.encoder_decoder import EncoderDecoder

VARIANTS = {
    "default": {},
    "rope_grouped_query": dict(position="rope", num_kv_heads=2),
    "sinusoidal_multi_query": dict(position="sinusoidal", num_kv_heads=1),
    "additive": dict(attention="additive"),
    "fused": dict(attention_impl="fused"),
    "post_rmsnorm_swiglu_no_positions": dict(norm="rmsnorm", norm_position="post",
                                             activation="swiglu", position="none"),
}
TOLERANCE = dict(rtol=1e-4, atol=1e-4)


@functools.partial(jax.jit, static_argnums=(0,))
def _teacher_forced(model, params, prompts, lengths, continuation):
  """Prefill, then feed continuation [B, C] one token per step: logits [B, 1 + C, V]."""
  bucket, steps = prompts.shape[1], continuation.shape[1]
  logits, cache = model_steps.decoder_prefill(model, params, prompts, lengths, bucket + steps)
  step_fn = model_steps.decoder_step_fn(model, params, lengths)

  def body(cache, inputs):
    tokens, step = inputs
    step_logits, cache = step_fn(tokens, cache, step)
    return cache, step_logits

  _, step_logits = jax.lax.scan(body, cache, (continuation.T, jnp.arange(steps)))
  return jnp.concatenate([logits[:, None], jnp.swapaxes(step_logits, 0, 1)], axis=1)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_cached_logits_equal_the_full_forward_at_every_step(name):
  model, params = decoder_and_params(dataclasses.replace(BASE, **VARIANTS[name]))
  rows = [[3, 1, 4, 1, 5, 9, 2, 6, 5, 3], [2, 7, 1, 8, 2, 8, 1, 8, 2, 8],
          [5, 10, 2, 9, 4, 1, 6, 6, 0, 7]]
  prompt_lengths = [4, 1, 3]  # Ragged: left-padded to a bucket of 4.
  prompts, lengths = kv_decoding.left_pad([r[:n] for r, n in zip(rows, prompt_lengths)], 4)
  continuation = np.array([r[n:n + 6] for r, n in zip(rows, prompt_lengths)], np.int32)
  cached = _teacher_forced(model, params, prompts, lengths, continuation)
  for row, n, got in zip(rows, prompt_lengths, np.asarray(cached)):
    # Logits for positions n-1 .. n+5 of the row alone, without any padding.
    np.testing.assert_allclose(got, full_logits(model, params, row[:n + 6])[n - 1:],
                               **TOLERANCE)


def test_last_logits_only_is_the_last_row_of_the_full_logits():
  model, params = decoder_and_params(BASE)
  tokens = jnp.asarray([[3, 1, 4, 1, 5], [2, 7, 1, 8, 2]], jnp.int32)
  full = model.apply({"params": params}, tokens, deterministic=True).logits
  last = model.apply({"params": params}, tokens, deterministic=True,
                     last_logits_only=True).logits
  assert last.shape == (2, 1, BASE.vocab_size)
  np.testing.assert_allclose(last, full[:, -1:], rtol=1e-6, atol=1e-6)


def test_the_cache_holds_the_prompt_and_marks_padding():
  model, params = decoder_and_params(BASE)
  prompts, lengths = kv_decoding.left_pad([[1, 2], [3, 4, 5]], 3)
  _, cache = jax.jit(lambda p: model_steps.decoder_prefill(model, p, prompts, lengths, 6))(params)
  assert int(cache.index) == 3 and cache.length == 6 and len(cache.layers) == 2
  kv_heads, head_dim = BASE.num_heads, BASE.head_dim
  assert cache.layers[0].self_attention.keys.shape == (2, 6, kv_heads, head_dim)
  np.testing.assert_array_equal(cache.valid, [[False, True, True, False, False, False],
                                              [True, True, True, False, False, False]])
  mask = kv_cache.attention_mask(cache.valid, jnp.asarray(1), 2)  # Slots 1 and 2 as queries.
  np.testing.assert_array_equal(mask[:, 0], [[[0, 1, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0]],
                                             [[1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0]]])


def test_no_cache_argument_changes_nothing():
  model, params = decoder_and_params(BASE)
  tokens = jnp.asarray([[1, 2, 3, 4]], jnp.int32)
  # The cached call adds no parameters: the same tree serves both paths.
  cached = jax.jit(lambda p: model.apply({"params": p}, tokens, deterministic=True,
                                         cache=kv_cache.init(BASE, 1, 4)).logits)
  np.testing.assert_allclose(cached(params), full_forward(model, params, tokens), **TOLERANCE)


GREEDY = jax.jit(functools.partial(model_steps.generate, Decoder(BASE), sampler=samplers.greedy,
                                   max_new_tokens=7), static_argnames=("stop_tokens",))


def _python_greedy(model, params, prompt, steps):
  tokens = list(prompt)
  for _ in range(steps):
    tokens.append(int(np.argmax(full_logits(model, params, tokens)[-1])))
  return tokens[len(prompt):]


def test_greedy_equals_a_python_loop_over_thefull_forward():
  model, params = decoder_and_params(BASE, seed=3, stddev=1.0)
  prompts, lengths = kv_decoding.left_pad([[4, 2, 7]], 3)
  tokens, emitted = GREEDY(params, prompts, lengths, key=jax.random.key(0))
  assert tokens[0].tolist() == _python_greedy(model, params, [4, 2, 7], 7)
  assert emitted.tolist() == [7]
  assert len(set(tokens[0].tolist())) > 1  # Not a degenerate repeat: the test has teeth.


def test_a_ragged_batch_decodes_as_each_prompt_alone():
  _, params = decoder_and_params(BASE, seed=3, stddev=1.0)
  ragged = [[5], [1, 9, 3, 3], [8, 2]]
  prompts, lengths = kv_decoding.left_pad(ragged, 5)  # Even the longest is padded.
  together, _ = GREEDY(params, prompts, lengths, key=jax.random.key(0))
  for prompt, row in zip(ragged, np.asarray(together)):
    alone, _ = GREEDY(params, *kv_decoding.left_pad([prompt], len(prompt)),
                      key=jax.random.key(0))
    assert row.tolist() == alone[0].tolist()


def test_prompts_of_one_bucket_share_one_compilation():
  model, params = decoder_and_params(BASE)
  traces = []

  def counted(params, prompts, lengths, key):
    traces.append(prompts.shape)
    return model_steps.generate(model, params, prompts, lengths, sampler=samplers.greedy,
                                max_new_tokens=4, key=key)

  run = jax.jit(counted)
  for prompt_set in ([[1, 2], [3]], [[4, 5, 6], [7, 8]], [[9], [10, 1, 2]]):
    run(params, *kv_decoding.left_pad(prompt_set, 3), jax.random.key(0))
  assert traces == [(2, 3)]


def test_stop_tokens_end_a_row_and_pad_the_rest():
  _, params = decoder_and_params(BASE, seed=3, stddev=1.0)
  prompts, lengths = kv_decoding.left_pad([[4, 2, 7], [1, 5]], 3)
  free, _ = GREEDY(params, prompts, lengths, key=jax.random.key(0))
  row = free[0].tolist()
  first_new = next(i for i in range(1, 7) if row[i] not in row[:i])
  stop = row[first_new]  # Row 0 stops after first_new + 1 tokens; row 1 wherever it meets it.
  tokens, emitted = GREEDY(params, prompts, lengths, key=jax.random.key(0), stop_tokens=(stop,))
  for row, free_row, count in zip(np.asarray(tokens), np.asarray(free), emitted.tolist()):
    hits = [i for i, t in enumerate(free_row.tolist()) if t == stop]
    expected = hits[0] + 1 if hits else 7
    assert count == expected
    assert row[:count].tolist() == free_row[:count].tolist()
    assert (row[count:] == 0).all()  # pad_token 0
  assert emitted[0] == first_new + 1


def test_too_long_a_decode_fails_before_compiling():
  _, params = decoder_and_params(BASE)
  prompts, lengths = kv_decoding.left_pad([[1, 2, 3, 4, 5, 6]], 6)  # 6 + 7 - 1 = 12 fits.
  GREEDY(params, prompts, lengths, key=jax.random.key(0))
  prompts, lengths = kv_decoding.left_pad([[1, 2, 3, 4, 5, 6]], 7)
  with pytest.raises(ValueError, match="exceeds model.max_length=12"):
    GREEDY(params, prompts, lengths, key=jax.random.key(0))


def test_translation_equals_full_forward_greedy(seq2seq):
  model, params, source, source_ids = seq2seq
  translate = jax.jit(functools.partial(model_steps.translate, model, bos_token=1,
                                        sampler=samplers.greedy, max_new_tokens=6))
  tokens, _ = translate(params, source, source_ids, key=jax.random.key(0))
  full = jax.jit(lambda target: model.apply({"params": params}, source, target,
                                            deterministic=True,
                                            source_segment_ids=source_ids).logits)
  target = np.zeros((2, 7), np.int32)  # Right-padded; the causal mask hides the padding.
  target[:, 0] = 1
  for step in range(6):
    target[:, step + 1] = np.argmax(full(target)[:, step], axis=-1)
  np.testing.assert_array_equal(tokens, target[:, 1:])
  assert len(set(np.asarray(tokens).ravel().tolist())) > 2


def test_the_encoder_runs_once_per_translation(seq2seq):
  _, params, source, source_ids = seq2seq
  calls = []

  class CountingEncoderDecoder(EncoderDecoder):
    def encode(self, *args, **kwargs):
      calls.append(1)
      return super().encode(*args, **kwargs)

  jax.make_jaxpr(functools.partial(
      model_steps.translate, CountingEncoderDecoder(SEQ2SEQ), bos_token=1,
      sampler=samplers.greedy, max_new_tokens=6))(params, source, source_ids,
                                                  key=jax.random.key(0))
  # Traced once, in the prefill: the loop body (traced once too) does not encode.
  assert len(calls) == 1


def test_steps_read_cross_attention_keys_from_the_cache(seq2seq):
  model, params, source, source_ids = seq2seq

  @jax.jit
  def first_two_steps(garbage):
    logits, cache, encoded = model_steps.seq2seq_prefill(model, params, source, source_ids,
                                                         bos_token=1, max_new_tokens=4)
    tokens = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    real, _ = model_steps.seq2seq_step_fn(model, params, encoded, source_ids)(tokens, cache, 0)
    # Given a meaningless encoder output, a step computes the same logits: it reads the cache.
    again, _ = model_steps.seq2seq_step_fn(model, params, garbage, source_ids)(tokens, cache, 0)
    full = model.apply({"params": params}, source, jnp.stack([jnp.ones_like(tokens), tokens], 1),
                       deterministic=True, source_segment_ids=source_ids).logits
    return cache, real, again, full[:, 1]

  cache, real, again, full = first_two_steps(jnp.full((2, 5, SEQ2SEQ.model_dim), 7.0))
  assert cache.layers[0].cross_attention.keys.shape == (2, 5, 2, SEQ2SEQ.head_dim)
  np.testing.assert_array_equal(again, real)
  np.testing.assert_allclose(real, full, **TOLERANCE)
