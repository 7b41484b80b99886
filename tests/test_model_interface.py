"""One model interface: the output structure, the one weight-matmul path, prompt embeddings
in front of the tokens and prefix key/value entries in front of every self-attention."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decoding_models import BASE, decoder_and_params, random_params
from transformer_jax.models import kv_cache
from transformer_jax.models.attention import PrefixKV
from transformer_jax.models.bert import BertPretraining
from transformer_jax.models.encoder import Encoder
from transformer_jax.models.outputs import ModelOutput
from transformer_jax.models.projection import Projection
from transformer_jax import parameter_paths

TOLERANCE = dict(rtol=2e-5, atol=2e-5)
TOKENS = jnp.asarray([[3, 1, 4, 1, 5, 9], [2, 7, 1, 8, 2, 8]], jnp.int32)
ROPE = dataclasses.replace(BASE, position="rope", num_kv_heads=2)
BERT = dataclasses.replace(BASE, norm_position="post", num_token_types=2, embedding_norm=True)


def _apply(model, params, *args, **kwargs) -> ModelOutput:
  return model.apply({"params": params}, *args, deterministic=True, **kwargs)


def test_every_family_returns_one_structure_and_weights_only_when_asked(seq2seq):
  decoder, decoder_params = decoder_and_params(BASE)
  bert = BertPretraining(config=BERT)
  bert_params = random_params(bert, TOKENS)
  model, params, source, source_ids = seq2seq
  target = TOKENS[:, :4]
  plain = [_apply(decoder, decoder_params, TOKENS), _apply(bert, bert_params, TOKENS),
           _apply(model, params, source, target, source_segment_ids=source_ids)]
  for out in plain:
    assert isinstance(out, ModelOutput)
    assert out.logits.dtype == jnp.float32 and out.logits.shape[-1] == BASE.vocab_size
    assert out.hidden_states.shape == out.logits.shape[:2] + (BASE.model_dim,)
    assert out.cache is None and out.attention_weights is None
  assert plain[1].next_sentence_logits.shape == (2, 2) and plain[0].next_sentence_logits is None
  asked = _apply(decoder, decoder_params, TOKENS, return_attention_weights=True)
  np.testing.assert_array_equal(asked.logits, plain[0].logits)
  weights = np.asarray(asked.attention_weights)
  assert weights.shape == (2, 2, 4, 6, 6)  # [L, B, H, T, S]
  np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
  assert (weights[..., np.triu_indices(6, 1)[0], np.triu_indices(6, 1)[1]] == 0).all()
  out = _apply(model, params, source, target, source_segment_ids=source_ids,
               return_attention_weights=True)
  cross = np.asarray(out.cross_attention_weights)
  assert cross.shape == (BASE.num_layers, 2, 4, 4, 5)
  np.testing.assert_allclose(cross.sum(-1), 1.0, rtol=1e-5)
  assert (cross[:, 1, :, :, 2:] == 0).all()  # Row 1's source has 2 real tokens.


def _dot_calls(model, params, *args, **kwargs):
  """Every call of a weight matmul: (module path, kernel shape)."""
  calls = []

  def interceptor(next_fun, args, kwargs, context):
    if context.method_name == "dot":
      calls.append(("/".join(context.module.path), args[1].shape))
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(interceptor):
    _apply(model, params, *args, **kwargs)
  return calls


def test_every_weight_matmul_goes_through_one_method():
  model, params = decoder_and_params(BASE)
  calls = _dot_calls(model, params, TOKENS)
  kernels = {path.rsplit("/", 1)[0] for path in parameter_paths.flat(params)
             if path.endswith("/kernel")}
  assert len(kernels) == 12  # 2 layers x (query, key, value, output, MLP input, MLP output).
  assert sorted(path for path, _ in calls) == sorted(kernels | {"token_embedding"})
  assert dict(calls)["token_embedding"] == (BASE.model_dim, BASE.vocab_size)  # Tied, [in, out].
  # Replacing that one method reaches every weight: with zero products, the logits
  # are zero, since even the tied output projection went through it.
  def zero(next_fun, args, kwargs, context):
    if context.method_name == "dot":
      return jnp.zeros(args[0].shape[:-1] + args[1].shape[-1:])
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(zero):
    logits = _apply(model, params, TOKENS).logits
  np.testing.assert_array_equal(logits, 0.0)


def test_bert_heads_use_the_same_path():
  bert = BertPretraining(config=BERT)
  params = random_params(bert, TOKENS)
  paths = {path for path, _ in _dot_calls(bert, params, TOKENS)}
  assert {"mlm_transform", "pooler", "next_sentence", "token_embedding"} <= paths


def test_param_dtype_is_the_stored_dtype():
  layer = Projection(output_shape=(3,), kernel_axes=("embed", "mlp"), use_bias=True,
                     param_dtype=jnp.bfloat16)
  params = nn.unbox(layer.init(jax.random.key(0), jnp.ones((2, 4)))["params"])
  assert params["kernel"].dtype == params["bias"].dtype == jnp.bfloat16


@pytest.mark.parametrize("config", [BASE, ROPE], ids=["learned", "rope"])
def test_prompt_embeddings_act_as_tokens_before_the_tokens(config):
  model, params = decoder_and_params(config)
  prompt = TOKENS[:, :2]
  full = _apply(model, params, TOKENS)
  soft = params["token_embedding"]["embedding"][prompt]  # [B, P, D]
  out = _apply(model, params, TOKENS[:, 2:], prompt_embeddings=soft)
  assert out.logits.shape == (2, 4, config.vocab_size)  # The tokens' rows only.
  np.testing.assert_allclose(out.logits, full.logits[:, 2:], **TOLERANCE)
  # Padded rows (segment ids) and one prompt shared by the batch ([1, P, D]).
  shared = params["token_embedding"]["embedding"][jnp.asarray([[3, 1]])]
  rows = jnp.asarray([[4, 1, 5, 0], [4, 1, 5, 9]], jnp.int32)
  segments = (jnp.arange(4) < jnp.asarray([[3], [4]])).astype(jnp.int32)
  padded = _apply(model, params, rows, segment_ids=segments, prompt_embeddings=shared)
  alone = _apply(model, params, jnp.asarray([[3, 1, 4, 1, 5, 9]], jnp.int32))
  np.testing.assert_allclose(padded.logits[1], alone.logits[0, 2:], **TOLERANCE)
  np.testing.assert_allclose(padded.logits[0, :3], alone.logits[0, 2:5], **TOLERANCE)
  # An empty prompt changes nothing.
  empty = _apply(model, params, TOKENS, prompt_embeddings=soft[:, :0])
  np.testing.assert_array_equal(empty.logits, full.logits)


def test_prompt_embeddings_with_a_cache_equal_the_full_forward():
  model, params = decoder_and_params(ROPE)
  soft = params["token_embedding"]["embedding"][TOKENS[:, :2]]
  full = _apply(model, params, TOKENS).logits
  cache = kv_cache.init(ROPE, 2, 6)
  prefill = _apply(model, params, TOKENS[:, 2:4], prompt_embeddings=soft, cache=cache)
  np.testing.assert_allclose(prefill.logits, full[:, 2:4], **TOLERANCE)
  step = _apply(model, params, TOKENS[:, 4:5], cache=prefill.cache)  # Positions: the slots.
  np.testing.assert_allclose(step.logits[:, 0], full[:, 4], **TOLERANCE)


def test_encoder_prompt_embeddings_act_as_tokens_before_the_tokens():
  model = Encoder(config=BERT)
  params = random_params(model, TOKENS)
  full = _apply(model, params, TOKENS, segment_ids=jnp.ones_like(TOKENS)).hidden_states
  soft = params["token_embedding"]["embedding"][TOKENS[:, :2]]
  out = _apply(model, params, TOKENS[:, 2:], segment_ids=jnp.ones_like(TOKENS[:, 2:]),
               prompt_embeddings=soft).hidden_states
  np.testing.assert_allclose(out, full[:, 2:], **TOLERANCE)


@pytest.mark.parametrize("config", [BASE, ROPE], ids=["learned", "rope"])
def test_prefix_entries_equal_the_cached_keys_of_a_real_prefix(config):
  model, params = decoder_and_params(config)
  full = _apply(model, params, TOKENS).logits
  prefill = _apply(model, params, TOKENS[:, :2], cache=kv_cache.init(config, 2, 2))
  prefix = [PrefixKV(keys=layer.self_attention.keys, values=layer.self_attention.values)
            for layer in prefill.cache.layers]
  positions = jnp.broadcast_to(jnp.arange(2, 6), (2, 4))  # Entries carry no position.
  out = _apply(model, params, TOKENS[:, 2:], positions=positions, prefix=prefix,
               return_attention_weights=True)
  np.testing.assert_allclose(out.logits, full[:, 2:], **TOLERANCE)
  assert out.attention_weights.shape == (2, 2, 4, 4, 6)  # S = 2 entries + 4 tokens.
  # The same entries in front of a KV cache, one token at a time.
  cached = _apply(model, params, TOKENS[:, 2:3], positions=positions[:, :1], prefix=prefix,
                  cache=kv_cache.init(config, 2, 4))
  step = _apply(model, params, TOKENS[:, 3:4], positions=positions[:, 1:2], prefix=prefix,
                cache=cached.cache)
  np.testing.assert_allclose(step.logits[:, 0], full[:, 3], **TOLERANCE)
  # No entries: the model without a prefix.
  none = [PrefixKV(keys=p.keys[:, :0], values=p.values[:, :0]) for p in prefix]
  np.testing.assert_array_equal(_apply(model, params, TOKENS, prefix=none).logits, full)
