"""Packed seq2seq rows: each pair's logits and loss equal those of the pair alone, unpacked;
the cross-attention mask by hand; data.packing checked per experiment."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import clm, mlm, seq2seq
from decoding_models import random_params
from transformer_jax import configuration, experiment_rules
from transformer_jax.config_sections import ModelConfig
from transformer_jax.data.tasks import translation_data
from transformer_jax.data.tokenizers.char_tokenizer import CharTokenizer
from transformer_jax.data.corpora.sources import Document
from transformer_jax.errors import ConfigError
from transformer_jax.models.decoder import cross_attention_mask
from transformer_jax.models.encoder_decoder import EncoderDecoder
from transformer_jax.objectives import objective as objective_lib
from transformer_jax.objectives.seq2seq import Seq2SeqObjective

# Characters a0 b1 x2 y3 z4, then PAD 5, BOS 6, EOS 7, UNK 8.
TOKENIZER = CharTokenizer(list("abxyz"), translation_data.TRANSLATION_SPECIAL_TOKENS)
IDS = dict(pad_id=5, bos_id=6, eos_id=7)
LENGTH = 10
PAIRS = [Document(source, f"p:{i}", target) for i, (source, target) in enumerate([
    ("ab", "xyz"), ("b", "y"), ("zzxa", "xy"), ("a", "zyxz"), ("bax", "b"), ("y", "a"),
    ("xyzab", "bbaaxy"), ("z", "yy")])]
MODEL = ModelConfig(num_layers=2, num_heads=2, model_dim=16, mlp_dim=32, max_length=LENGTH,
                    dropout_rate=0.0, use_bias=True, dtype="float32", vocab_size=9,
                    num_encoder_layers=2, scale_embeddings=True)
POSITIONS = ["sinusoidal", "learned", "rope"]


def _rows(pack: bool) -> dict[str, np.ndarray]:
  rows, dropped = translation_data.encode_pairs(TOKENIZER, PAIRS, LENGTH, truncate=False,
                                                pack=pack, **IDS)
  assert dropped == 0
  return rows


def _spans(rows):
  """[(row, target positions)] of every pair in packing order: segment 1, 2, ... per row."""
  return [(row, np.flatnonzero(rows["segment_ids"][row] == segment))
          for row in range(len(rows["segment_ids"]))
          for segment in range(1, int(rows["segment_ids"][row].max()) + 1)]


def _model_and_params(position):
  model = EncoderDecoder(dataclasses.replace(MODEL, position=position))
  example = jnp.zeros((1, LENGTH), jnp.int32)
  return model, random_params(model, example, example, seed=1, stddev=0.5)


def test_rows_really_pack():
  packed, unpacked = _rows(pack=True), _rows(pack=False)
  assert len(packed["source"]) == 3 and len(unpacked["source"]) == len(PAIRS)
  assert [int(row.max()) for row in packed["segment_ids"]] == [3, 3, 2]


@pytest.mark.parametrize("position", POSITIONS)
def test_each_packed_pair_has_the_logits_of_the_pair_alone(position):
  model, params = _model_and_params(position)
  apply = jax.jit(lambda rows: model.apply(
      {"params": params}, rows["source"], rows["inputs"], deterministic=True,
      source_segment_ids=rows["source_segment_ids"], segment_ids=rows["segment_ids"],
      source_positions=rows.get("source_positions"), positions=rows.get("positions")).logits)
  packed_rows, unpacked_rows = _rows(pack=True), _rows(pack=False)
  packed, alone = np.asarray(apply(packed_rows)), np.asarray(apply(unpacked_rows))
  spans = _spans(packed_rows)
  assert len(spans) == len(PAIRS)
  for pair, (row, columns) in enumerate(spans):
    np.testing.assert_allclose(packed[row, columns], alone[pair, :len(columns)],
                               rtol=1e-5, atol=1e-5)
  # Without positions a row's later pairs would be read at the wrong absolute positions
  # (RoPE sees only relative positions, which a shift of a whole pair keeps).
  shifted = np.asarray(apply({k: v for k, v in packed_rows.items() if "positions" not in k}))
  row, columns = spans[1]
  assert np.allclose(shifted[row, columns], packed[row, columns],
                     atol=1e-3) == (position == "rope")


# Label smoothing with sinusoidal positions here; the other three in the slow tier.
@pytest.mark.parametrize("label_smoothing, position", [
    (0.1, "sinusoidal"), pytest.param(0.1, "learned", marks=pytest.mark.slow),
    pytest.param(0.0, "sinusoidal", marks=pytest.mark.slow),
    pytest.param(0.0, "learned", marks=pytest.mark.slow)])
def test_loss_sums_of_packed_and_unpacked_batches_are_equal(position, label_smoothing):
  model, params = _model_and_params(position)
  objective = Seq2SeqObjective(model, label_smoothing)
  packed = objective_lib.eval_sums(objective, params, _rows(pack=True))
  unpacked = objective_lib.eval_sums(objective, params, _rows(pack=False))
  assert float(packed["token_count"]) == float(unpacked["token_count"]) == sum(
      len(pair.target) + 1 for pair in PAIRS)
  for name in ("loss_sum", "correct_sum"):
    np.testing.assert_allclose(float(packed[name]), float(unpacked[name]), rtol=1e-5)
  # Training: label smoothing and the mean over real tokens, dropout off (rate 0).
  packed_loss, _ = objective_lib.train_loss(objective, params, _rows(pack=True), jax.random.key(0))
  unpacked_loss, _ = objective_lib.train_loss(objective, params, _rows(pack=False),
                                              jax.random.key(0))
  np.testing.assert_allclose(float(packed_loss), float(unpacked_loss), rtol=1e-5)


def test_cross_attention_mask_by_hand():
  source_ids = jnp.array([[1, 1, 2, 2, 2, 0]])
  target_ids = jnp.array([[1, 1, 1, 2, 0]])
  mask = cross_attention_mask(target_ids, source_ids)
  assert mask.shape == (1, 1, 5, 6)
  assert mask[0, 0].astype(int).tolist() == [
      [1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0],
      [0, 0, 1, 1, 1, 0], [0, 0, 0, 0, 0, 0]]
  # Unpacked rows (real ids 1): every real target position sees every real source position.
  source_ids, target_ids = jnp.array([[1, 1, 1, 0]]), jnp.array([[1, 1, 0]])
  assert cross_attention_mask(target_ids, source_ids)[0, 0].astype(int).tolist() == [
      [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]]
  # No target segment ids (decoding): every target position sees every real source position.
  assert cross_attention_mask(None, source_ids).astype(int).tolist() == [[[[1, 1, 1, 0]]]]
  assert cross_attention_mask(target_ids, None) is None


def _with_packing(config, packing):
  config.data.packing = packing
  return config


def _seq2seq_tiny():
  return seq2seq.get_config("tiny")


@pytest.mark.parametrize("make, packing, experiment", [
    (_seq2seq_tiny, "stream", "seq2seq"),
    (lambda: clm.get_config("tiny"), "none", "clm"),
])
def test_packing_that_the_experiment_cannot_build_is_a_config_error(make, packing, experiment):
  with pytest.raises(ConfigError) as error:
    configuration.validate(_with_packing(make(), packing))
  assert error.value.field == "data.packing"
  assert str(error.value) == (
      f"config.data.packing: must be one of "
      f"{experiment_rules.RULES[experiment].packings} for experiment {experiment}, "
      f"got {packing!r}")


@pytest.mark.parametrize("make, packings", [
    (_seq2seq_tiny, ("none", "documents")),
    (lambda: clm.get_config("tiny"), ("stream", "documents")),
    (lambda: mlm.get_config("tiny"), ("none", "stream", "documents")),  # Unused by mlm.
])
def test_packings_each_experiment_accepts(make, packings):
  for packing in packings:
    assert configuration.validate(_with_packing(make(), packing)).data.packing == packing
