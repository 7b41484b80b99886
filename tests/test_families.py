"""Encoder-only (BERT) and encoder-decoder models: masks, padding, sharing, published sizes."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import clm, mlm, seq2seq
from transformer_jax import configuration
from transformer_jax.config_sections import ModelConfig
from transformer_jax.models.bert import BertPretraining
from transformer_jax.models.decoder import Decoder
from transformer_jax.models.encoder import Encoder
from transformer_jax.models.encoder_decoder import EncoderDecoder

BASE = ModelConfig(num_layers=2, num_heads=2, model_dim=16, mlp_dim=32, max_length=12,
                   dropout_rate=0.0, use_bias=True, dtype="float32", vocab_size=13)
BERT = dataclasses.replace(BASE, norm_position="post", num_token_types=2, embedding_norm=True)
VASWANI = dataclasses.replace(BASE, num_encoder_layers=3, position="sinusoidal",
                              scale_embeddings=True, norm_position="post")
TOKENS = jnp.array([[1, 2, 3, 4, 5, 6, 7, 8]])


def _init(model, *inputs):
  return model.init(jax.random.key(0), *inputs, deterministic=True)["params"]


def _count(params) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(nn.unbox(params)))


def _preset_model(config_module, preset: str, vocab_size: int) -> ModelConfig:
  cfg = configuration.validate(config_module.get_config(preset))
  return dataclasses.replace(cfg.model, vocab_size=vocab_size)


@pytest.mark.parametrize("config", [BASE, BERT], ids=["pre_norm", "bert"])
def test_encoder_sees_both_directions(config):
  model = Encoder(config)
  params = _init(model, TOKENS)
  apply = jax.jit(lambda t: model.apply({"params": params}, t,
                                        deterministic=True).hidden_states)
  hidden = apply(TOKENS)
  changed = apply(TOKENS.at[0, 5].set(11))
  assert not np.allclose(changed[0, :5], hidden[0, :5])  # Earlier positions see token 5.


def test_encoder_padding_changes_no_real_position():
  model = Encoder(BERT)
  params = _init(model, TOKENS)
  apply = jax.jit(lambda t, s, y: model.apply({"params": params}, t, deterministic=True,
                                              segment_ids=s, token_types=y).hidden_states)
  types = jnp.array([[0, 0, 0, 0, 1, 1, 1, 1]])
  short = apply(TOKENS, jnp.ones_like(TOKENS), types)
  padded_tokens = jnp.concatenate([TOKENS, jnp.array([[9, 10, 0, 12]])], axis=1)
  padded = apply(padded_tokens, jnp.concatenate([jnp.ones_like(TOKENS), jnp.zeros((1, 4),
                                                                                  jnp.int32)], 1),
                 jnp.concatenate([types, jnp.zeros((1, 4), jnp.int32)], 1))
  np.testing.assert_allclose(padded[0, :8], short[0], atol=1e-6)


def test_token_types_change_the_encoding():
  model = Encoder(BERT)
  params = _init(model, TOKENS)
  a = model.apply({"params": params}, TOKENS, deterministic=True,
                  token_types=jnp.zeros_like(TOKENS)).hidden_states
  b = model.apply({"params": params}, TOKENS, deterministic=True,
                  token_types=jnp.ones_like(TOKENS)).hidden_states
  assert not np.allclose(a, b)


def test_bert_heads_are_tied_and_shaped():
  model = BertPretraining(BERT)
  params = _init(model, TOKENS)
  assert set(params) == {"token_embedding", "encoder", "mlm_transform", "mlm_norm",
                         "mlm_output_bias", "pooler", "next_sentence"}
  assert "token_embedding" not in params["encoder"]  # One table: input and MLM output.
  outputs = model.apply({"params": params}, TOKENS, deterministic=True)
  assert outputs.logits.shape == (1, 8, 13) and outputs.next_sentence_logits.shape == (1, 2)
  # The NSP head reads only the first (<cls>) position's final state.
  changed = model.apply({"params": params}, TOKENS.at[0, 0].set(12), deterministic=True)
  assert not np.allclose(changed.next_sentence_logits, outputs.next_sentence_logits)


def test_bert_base_has_the_published_parameter_count():
  config = _preset_model(mlm, "bert_base", vocab_size=30522)
  shapes = jax.eval_shape(lambda k: BertPretraining(config).init(
      k, jnp.zeros((1, 8), jnp.int32), deterministic=True)["params"], jax.random.key(0))
  # Hugging Face's BertForPreTraining(bert-base-uncased): 109,482,240 in BertModel
  # (embeddings, 12 layers, pooler) + 590,592 + 1,536 (MLM transform and its
  # LayerNorm) + 30,522 (MLM output bias) + 1,538 (NSP head).
  assert _count(shapes) == 110_106_428


def test_gpt2_preset_has_the_published_parameter_count():
  config = _preset_model(clm, "gpt2", vocab_size=50257)
  shapes = jax.eval_shape(lambda k: Decoder(config).init(
      k, jnp.zeros((1, 8), jnp.int32), deterministic=True)["params"], jax.random.key(0))
  assert _count(shapes) == 124_439_808


def _seq2seq(config):
  model = EncoderDecoder(config)
  source = jnp.array([[3, 4, 5, 6, 7, 2]])
  params = _init(model, source, TOKENS)
  apply = jax.jit(lambda s, t, **kw: model.apply({"params": params}, s, t, deterministic=True,
                                                 **kw).logits)
  return model, params, source, apply


def test_encoder_decoder_target_side_is_causal():
  _, _, source, apply = _seq2seq(VASWANI)
  logits = apply(source, TOKENS)
  for t in (0, 3, 6):
    changed = apply(source, TOKENS.at[0, t + 1].set(12))
    np.testing.assert_array_equal(changed[0, :t + 1], logits[0, :t + 1])
    assert not np.allclose(changed[0, t + 1:], logits[0, t + 1:])


def test_encoder_decoder_reads_the_whole_source():
  _, _, source, apply = _seq2seq(VASWANI)
  logits = apply(source, TOKENS)
  changed = apply(source.at[0, 5].set(9), TOKENS)  # The last source token...
  assert not np.allclose(changed[0, 0], logits[0, 0])  # ...reaches the first target position.


def test_encoder_decoder_source_and_target_padding_change_nothing_real():
  _, _, source, apply = _seq2seq(VASWANI)
  ones = lambda x: jnp.ones_like(x)
  reference = apply(source, TOKENS, source_segment_ids=ones(source), segment_ids=ones(TOKENS))
  pad = lambda x, n, value: jnp.concatenate([x, jnp.full((1, n), value, jnp.int32)], axis=1)
  padded = apply(pad(source, 3, 4), pad(TOKENS, 2, 5),
                 source_segment_ids=pad(ones(source), 3, 0), segment_ids=pad(ones(TOKENS), 2, 0))
  np.testing.assert_allclose(padded[0, :8], reference[0], atol=1e-6)


def test_shared_embeddings_are_one_table():
  _, shared, _, _ = _seq2seq(VASWANI)
  _, separate, _, _ = _seq2seq(dataclasses.replace(VASWANI, share_embeddings=False))
  assert "token_embedding" in shared and "token_embedding" not in shared["encoder"]
  assert "token_embedding" not in shared["decoder"]
  assert "token_embedding" in separate["encoder"] and "token_embedding" in separate["decoder"]
  assert _count(separate) - _count(shared) == 13 * 16  # One more [V, D] table.
  assert "cross_attention" in shared["decoder"]["block_0"]
  assert len([k for k in shared["encoder"] if k.startswith("block_")]) == 3  # num_encoder_layers


@pytest.mark.parametrize("config_module, presets", [(mlm, mlm.PRESETS),
                                                    (seq2seq, seq2seq.PRESETS)])
def test_every_preset_validates(config_module, presets):
  for preset in presets:
    cfg = configuration.validate(config_module.get_config(preset))
    assert cfg.experiment == config_module.get_config(preset).experiment
