"""Objectives as sums over counts: micro-batches divided by the whole batch's counts add up
to the whole batch's loss and gradient, for every objective, padding and filler rows included."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decoding_models import BASE, decoder_and_params, random_params
from transformer_jax.models.bert import BertPretraining
from transformer_jax.objectives import objective as objective_lib
from transformer_jax.objectives.causal_lm import CausalLmObjective
from transformer_jax.objectives.masked_lm import MaskedLmObjective
from transformer_jax.objectives.seq2seq import Seq2SeqObjective

GENERATOR = np.random.default_rng(0)


def _ints(high, shape):
  return jnp.asarray(GENERATOR.integers(1, high, shape), jnp.int32)


def _weights(lengths, width):
  """[B, width] with row b's first lengths[b] entries 1: padding of different lengths."""
  return (np.arange(width)[None] < np.asarray(lengths)[:, None]).astype(np.float32)


def _causal_lm():
  model, params = decoder_and_params(BASE)
  batch = {"inputs": _ints(11, (4, 6)), "targets": _ints(11, (4, 6)),
           "weights": jnp.asarray(_weights([6, 2, 5, 0], 6))}
  return CausalLmObjective(model, label_smoothing=0.1), params, batch


def _masked_lm():
  config = dataclasses.replace(BASE, norm_position="post", num_token_types=2)
  model = BertPretraining(config=config)
  tokens = _ints(11, (4, 6))
  params = random_params(model, tokens)
  segments = _weights([6, 4, 6, 0], 6).astype(np.int32)  # Row 3 is filler.
  batch = {"inputs": tokens, "targets": _ints(11, (4, 6)),
           "weights": jnp.asarray(_weights([3, 1, 2, 0], 6)),
           "token_types": jnp.asarray((np.arange(6)[None] >= 3) * segments, jnp.int32),
           "segment_ids": jnp.asarray(segments), "is_next": jnp.asarray([1, 0, 1, 0])}
  return MaskedLmObjective(model), params, batch


def _seq2seq(seq2seq):
  model, params, _, _ = seq2seq
  source_ids = jnp.asarray(_weights([5, 3, 4, 2], 5), jnp.int32)
  batch = {"source": _ints(11, (4, 5)) * source_ids, "source_segment_ids": source_ids,
           "inputs": _ints(11, (4, 4)), "targets": _ints(11, (4, 4)),
           "weights": jnp.asarray(_weights([4, 2, 3, 1], 4)),
           "segment_ids": jnp.asarray(_weights([4, 2, 3, 1], 4), jnp.int32)}
  return Seq2SeqObjective(model, label_smoothing=0.1), params, batch


@pytest.mark.parametrize("make", ["causal_lm", "masked_lm", "seq2seq"])
def test_micro_batches_add_up_to_the_whole_batch(make, seq2seq):
  objective, params, batch = {"causal_lm": _causal_lm, "masked_lm": _masked_lm,
                              "seq2seq": lambda: _seq2seq(seq2seq)}[make]()
  rng = jax.random.key(0)
  loss_and_grad = jax.jit(jax.value_and_grad(
      lambda p, part, counts: objective_lib.train_loss(objective, p, part, rng, counts)[0]))
  counts = objective.counts(batch)
  whole = loss_and_grad(params, batch, None)
  parts = [loss_and_grad(params, part, counts)
           for part in ({k: v[:2] for k, v in batch.items()},
                        {k: v[2:] for k, v in batch.items()})]
  np.testing.assert_allclose(parts[0][0] + parts[1][0], whole[0], rtol=1e-6)
  summed = jax.tree_util.tree_map(jnp.add, parts[0][1], parts[1][1])
  for got, want in zip(jax.tree_util.tree_leaves(summed), jax.tree_util.tree_leaves(whole[1])):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  # Counts come from the batch alone, and the loss is its terms' sums over them.
  sums = jax.jit(lambda p: objective.sums(p, batch, training=True, rng=rng))(params)
  by_hand = sum(float(sums[t.sum]) / max(float(counts[t.count]), 1.0)
                for t in objective.loss_terms)
  assert float(whole[0]) == pytest.approx(by_hand, rel=1e-6)
  for term in objective.loss_terms:
    assert float(sums[term.count]) == float(counts[term.count])  # Same count, two routes.
