"""Beam search: exact on hand-built step functions, GNMT length penalty, models' n-best lists."""

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decoding_models import BASE, decoder_and_params, full_logits
from transformer_jax.decoding import beam_search, kv_decoding, model_steps, samplers
from transformer_jax.decoding.beam_search import BeamOptions

EOS = 0


class TableModel:
  """Next-token log-probabilities looked up by the whole prefix: table [B, codes, V].

  The cache holds each row's batch index and its prefix code, so it checks that
  beam search reorders the cache with its beams.
  """

  def __init__(self, log_probs: dict, vocab_size: int, max_length: int, batch: int = 1):
    self.vocab_size = vocab_size
    self.table = np.full((batch, (vocab_size + 1)**max_length, vocab_size), -1e9, np.float32)
    for (row, prefix), probabilities in log_probs.items():
      self.table[row, self.code(prefix)] = probabilities

  def code(self, prefix) -> int:
    code = 0
    for token in prefix:
      code = code * (self.vocab_size + 1) + token + 1
    return code

  def first_logits(self):
    return jnp.asarray(self.table[:, 0])

  def step_fn(self, tokens, cache, step):  # pylint: disable=unused-argument
    rows, codes = cache
    codes = codes * (self.vocab_size + 1) + tokens + 1
    return jnp.asarray(self.table)[rows, codes], (rows, codes)

  def log_prob(self, row, sequence) -> float:
    return sum(float(self.table[row, self.code(sequence[:i]), token])
               for i, token in enumerate(sequence))


def _search(table_model, beam_size, max_new_tokens, alpha=0.0, eos=EOS, num_exact=0,
            step_fn=None):
  batch = table_model.table.shape[0]
  cache = (jnp.repeat(jnp.arange(batch), beam_size), jnp.zeros(batch * beam_size, jnp.int32))
  return jax.jit(lambda logits, cache: beam_search.beam_search(
      step_fn or table_model.step_fn, logits, cache,
      options=BeamOptions(beam_size, alpha=alpha, eos_token=eos, pad_token=-1,
                          num_exact=num_exact),
      max_new_tokens=max_new_tokens))(table_model.first_logits(), cache)


def _log(*probabilities):
  return np.log(np.asarray(probabilities, np.float32) + 1e-30)


def test_beam_search_finds_what_greedy_misses():
  # Greedy takes 1 (0.5) and then at best 1/3: 0.167. Through 2 (0.4), 3 follows at 0.9: 0.36.
  third = 1 / 3
  table_model = TableModel({
      (0, ()): _log(0.0, 0.5, 0.4, 0.1),
      (0, (1,)): _log(0.0, third, third, third),
      (0, (2,)): _log(0.0, 0.05, 0.05, 0.9),
      (0, (3,)): _log(0.0, 0.5, 0.5, 0.0),
      **{(0, (a, b)): _log(1.0, 0.0, 0.0, 0.0) for a in (1, 2, 3) for b in (1, 2, 3)},
  }, vocab_size=4, max_length=3)
  greedy, _ = jax.jit(lambda logits: kv_decoding.sample_loop(
      table_model.step_fn, samplers.greedy, logits,
      (jnp.zeros(1, jnp.int32), jnp.zeros(1, jnp.int32)), max_new_tokens=3,
      key=jax.random.key(0), stop_tokens=(EOS,), pad_token=-1))(table_model.first_logits())
  assert greedy.tolist() == [[1, 1, EOS]]
  result = _search(table_model, beam_size=2, max_new_tokens=3)
  # Step 1 keeps [1] and [2]; step 2 keeps [2, 3] (0.36) and [1, 1] (0.167, first of a tie).
  assert result.tokens[0].tolist() == [[2, 3, EOS], [1, 1, EOS]]
  assert result.lengths.tolist() == [[3, 3]]
  np.testing.assert_allclose(result.log_probs, [[math.log(0.36), math.log(0.5 / 3)]],
                             rtol=1e-5)
  np.testing.assert_allclose(result.scores, result.log_probs)  # alpha 0: lp = 1.
  single = _search(table_model, beam_size=1, max_new_tokens=3)
  assert single.tokens[0].tolist() == [[1, 1, EOS]]  # A beam of one is greedy.


def _all_hypotheses(vocab_size, max_new_tokens):
  """Every sequence beam search may return: ends at its first EOS, or at the limit."""
  for length in range(1, max_new_tokens + 1):
    for body in itertools.product(range(1, vocab_size), repeat=length - 1):
      yield body + (EOS,)
  yield from itertools.product(range(1, vocab_size), repeat=max_new_tokens)


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.5])
def test_a_beam_wide_enough_to_keep_every_prefix_returns_the_exact_n_best(alpha):
  vocab_size, max_new_tokens, batch = 4, 4, 2
  beams = (vocab_size - 1)**(max_new_tokens - 1)  # Every EOS-free prefix stays live.
  generator = np.random.default_rng(0)
  table_model = TableModel({}, vocab_size, max_new_tokens, batch)
  table_model.table = np.asarray(
      jax.nn.log_softmax(generator.normal(0, 1.5, table_model.table.shape)), np.float32)
  result = _search(table_model, beams, max_new_tokens, alpha)
  for row in range(batch):
    scored = []
    for sequence in _all_hypotheses(vocab_size, max_new_tokens):
      log_prob = table_model.log_prob(row, sequence)
      scored.append((log_prob / ((5 + len(sequence)) / 6)**alpha, sequence))
    scored.sort(reverse=True)
    expected = [list(s) + [-1] * (max_new_tokens - len(s)) for _, s in scored[:beams]]
    assert result.tokens[row].tolist() == expected
    np.testing.assert_allclose(result.scores[row], [score for score, _ in scored[:beams]],
                               rtol=1e-5)
    assert result.lengths[row].tolist() == [len(s) for _, s in scored[:beams]]
  best_only = _search(table_model, beams, max_new_tokens, alpha, num_exact=1)
  np.testing.assert_array_equal(best_only.tokens[:, 0], result.tokens[:, 0])
  np.testing.assert_allclose(best_only.scores[:, 0], result.scores[:, 0], rtol=1e-6)


def test_wanting_only_the_best_stops_once_it_is_final():
  # [EOS] at step 1 scores log 0.9: the live beams, at log 0.05, can never beat it, so
  # the best is final at once. The n-best of 2 needs a second: step 2 (uniform rows)
  # finishes [1, EOS] at log(0.05/4) / lp(2) = -3.99, still beatable by a live beam's
  # bound log(0.05/4) / lp(4) = -3.43; after step 3 the bound is -4.52 and it stops.
  table_model = TableModel({(0, ()): _log(0.9, 0.05, 0.05, 0.0)}, vocab_size=4, max_length=4)
  calls = []

  def counting_step_fn(tokens, cache, step):
    jax.debug.callback(lambda: calls.append(1))
    return table_model.step_fn(tokens, cache, step)

  n_best = _search(table_model, 2, 4, alpha=0.6, step_fn=counting_step_fn)
  calls_for_n_best, calls[:] = len(calls), []
  best_only = _search(table_model, 2, 4, alpha=0.6, num_exact=1, step_fn=counting_step_fn)
  assert (calls_for_n_best, len(calls)) == (2, 0)
  assert best_only.tokens[0, 0].tolist() == n_best.tokens[0, 0].tolist() == [EOS, -1, -1, -1]


@pytest.mark.parametrize("alpha", [0.0, 0.4, 0.6, 1.0])
def test_the_length_penalty_reranks_as_the_gnmt_formula_says(alpha):
  # [EOS]: log P = log 0.5, |Y| = 1.  [1, 1, EOS]: log P = log 0.45, |Y| = 3.
  table_model = TableModel({
      (0, ()): _log(0.5, 0.45, 0.05),
      (0, (1,)): _log(0.0, 1.0, 0.0),
      (0, (1, 1)): _log(1.0, 0.0, 0.0),
      (0, (2,)): _log(1.0, 0.0, 0.0),
  }, vocab_size=3, max_length=4)
  result = _search(table_model, beam_size=2, max_new_tokens=4, alpha=alpha)
  def gnmt(log_prob, length):
    return log_prob / ((5 + length) / 6)**alpha
  short, long = gnmt(math.log(0.5), 1), gnmt(math.log(0.45), 3)
  ranked = [[EOS, -1, -1, -1], [1, 1, EOS, -1]]
  expected = ranked if short > long else ranked[::-1]
  assert result.tokens[0].tolist() == expected
  np.testing.assert_allclose(result.scores[0], sorted([short, long], reverse=True), rtol=1e-5)
  # The ranking flips at alpha = ln(ln 0.45 / ln 0.5) / ln(4/3) = 0.492.
  assert (short > long) == (alpha <= 0.4)


def test_without_eos_every_hypothesis_runs_to_the_limit():
  table_model = TableModel({}, 3, 3)
  table_model.table = np.asarray(jax.nn.log_softmax(
      np.random.default_rng(1).normal(0, 1, table_model.table.shape)), np.float32)
  result = _search(table_model, beam_size=3, max_new_tokens=3, eos=None)
  assert (result.lengths == 3).all() and (result.tokens >= 0).all()
  scores = np.asarray(result.scores[0])
  assert (np.diff(scores) <= 0).all()
  best = max(itertools.product(range(3), repeat=3), key=lambda s: table_model.log_prob(0, s))
  assert result.tokens[0, 0].tolist() == list(best)


MAX_NEW = 6


@functools.lru_cache(maxsize=None)
def _model_beam_search(beam_size, eos):
  model = decoder_and_params(BASE)[0]
  return jax.jit(functools.partial(
      model_steps.beam_search, model, max_new_tokens=MAX_NEW,
      options=BeamOptions(beam_size, alpha=0.6 if beam_size > 1 else 0.0, eos_token=eos)))


@pytest.fixture(scope="module")
def decoder():
  model, params = decoder_and_params(BASE, seed=3, stddev=1.0)
  return model, params


def test_a_beam_of_one_is_greedy_on_a_model(decoder):
  _, params = decoder
  prompts, lengths = kv_decoding.left_pad([[4, 2, 7], [1, 5], [9]], 3)
  greedy = jax.jit(functools.partial(model_steps.generate, decoder[0], sampler=samplers.greedy,
                                     max_new_tokens=MAX_NEW), static_argnames="stop_tokens")
  free, _ = greedy(params, prompts, lengths, key=jax.random.key(0))
  beam = _model_beam_search(1, None)(params, prompts, lengths)
  np.testing.assert_array_equal(beam.tokens[:, 0], free)
  eos = int(free[0, 1])  # Stops row 0 after two tokens.
  stopped, emitted = greedy(params, prompts, lengths, key=jax.random.key(0), stop_tokens=(eos,))
  beam = _model_beam_search(1, eos)(params, prompts, lengths)
  np.testing.assert_array_equal(beam.tokens[:, 0], stopped)
  np.testing.assert_array_equal(beam.lengths[:, 0], emitted)


def test_model_n_best_scores_are_the_models_log_probabilities(decoder):
  model, params = decoder
  ragged = [[4, 2, 7], [1, 5]]
  prompts, lengths = kv_decoding.left_pad(ragged, 3)
  result = _model_beam_search(3, 5)(params, prompts, lengths)
  for row, prompt in enumerate(ragged):
    assert (np.diff(np.asarray(result.scores[row])) <= 0).all()  # Best first.
    for beam in range(3):
      length = int(result.lengths[row, beam])
      generated = result.tokens[row, beam, :length].tolist()
      logits = full_logits(model, params, prompt + generated)[len(prompt) - 1:-1]
      log_probs = jax.nn.log_softmax(logits)[np.arange(length), generated]
      np.testing.assert_allclose(result.log_probs[row, beam], log_probs.sum(), rtol=1e-4)
      np.testing.assert_allclose(result.scores[row, beam],
                                 log_probs.sum() / ((5 + length) / 6)**0.6, rtol=1e-4)
    alone = _model_beam_search(3, 5)(params, *kv_decoding.left_pad([prompt], 3))
    np.testing.assert_array_equal(alone.tokens[0], result.tokens[row])


def test_translation_beam_of_one_is_greedy_and_scores_are_the_models(seq2seq):
  model, params, source, source_ids = seq2seq
  common = dict(bos_token=1, max_new_tokens=MAX_NEW)
  greedy, _ = jax.jit(functools.partial(model_steps.translate, model, sampler=samplers.greedy,
                                        **common))(params, source, source_ids,
                                                   key=jax.random.key(0))
  for beams in (1, 3):
    result = jax.jit(functools.partial(model_steps.translate_beam_search, model,
                                       options=BeamOptions(beams), **common))(
                                           params, source, source_ids)
    assert result.tokens.shape == (2, beams, MAX_NEW)
    assert (np.diff(np.asarray(result.scores), axis=1) <= 0).all()
    for beam in range(beams):
      np.testing.assert_allclose(
          result.log_probs[:, beam],
          _target_log_probs(model, params, source, source_ids, result.tokens[:, beam]),
          rtol=1e-4)
    if beams == 1:
      np.testing.assert_array_equal(result.tokens[:, 0], greedy)


@functools.partial(jax.jit, static_argnums=(0,))
def _target_log_probs(model, params, source, source_ids, tokens):
  """log P(tokens [B, T] | source) [B] by the uncached model, teacher-forced after <bos>."""
  target = jnp.concatenate([jnp.ones((tokens.shape[0], 1), jnp.int32), tokens[:, :-1]], axis=1)
  logits = model.apply({"params": params}, source, target, deterministic=True,
                       source_segment_ids=source_ids).logits
  log_probs = jax.nn.log_softmax(logits)
  return jnp.take_along_axis(log_probs, tokens[..., None], axis=-1)[..., 0].sum(axis=1)
