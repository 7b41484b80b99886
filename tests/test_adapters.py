"""LoRA, prefix and prompt tuning around the models: exact equivalences."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decoding_models import BASE, random_params
from transformer_jax.adapters import adapted, lora
from transformer_jax.decoding import model_steps, samplers
from transformer_jax.models.attention import PrefixKV
from transformer_jax.models.classifier import DecoderClassifier, EncoderClassifier
from transformer_jax.models.decoder import Decoder
from transformer_jax import parameter_paths

TOLERANCE = dict(rtol=2e-5, atol=2e-5)
TOKENS = jnp.asarray([[3, 1, 4, 1, 5, 9], [2, 7, 1, 8, 2, 8]], jnp.int32)
ROPE = dataclasses.replace(BASE, position="rope", num_kv_heads=2)
TARGETS = (".*attention/(query|value)/kernel",)


def _lora_model(config=BASE, targets=TARGETS, base=None):
  base = base or Decoder(config=config)
  shapes = lora.target_shapes(base, (TOKENS,), {"deterministic": True}, targets)
  return adapted.Adapted(base=base, method="lora", lora_shapes=shapes, lora_rank=2,
                         lora_alpha=4.0), shapes


def _params(model, *args, **kwargs):
  return random_params(model, *args, **kwargs)


def _apply(model, params, *args, **kwargs):
  return model.apply({"params": params}, *args, deterministic=True, **kwargs)


def test_lora_targets_only_the_named_kernels_and_starts_as_the_base():
  model, shapes = _lora_model()
  assert [path for path, _, _ in shapes] == [
      f"block_{i}/attention/{name}" for i in range(2) for name in ("query", "value")]
  assert shapes[0][1:] == (BASE.model_dim, BASE.num_heads * BASE.head_dim)  # [in, out]
  base = Decoder(config=BASE)
  base_params = _params(base, TOKENS)
  params = {**base_params, "lora": lora.init(jax.random.key(0), shapes, rank=2)}
  assert set(parameter_paths.flat(params["lora"])) == {
      f"{path}/{name}" for path, _, _ in shapes for name in ("a", "b")}
  # B = 0: exactly the base.
  np.testing.assert_array_equal(_apply(model, params, TOKENS).logits,
                                _apply(base, base_params, TOKENS).logits)


@pytest.mark.parametrize("targets", [TARGETS, (".*/kernel",)], ids=["query_value", "every_kernel"])
def test_merged_lora_equals_the_adapted_model(targets):
  model, shapes = _lora_model(targets=targets)
  base = Decoder(config=BASE)
  params = {**_params(base, TOKENS), "lora": jax.tree_util.tree_map(
      lambda x: jnp.asarray(np.random.default_rng(1).normal(0, 0.3, x.shape), jnp.float32),
      lora.init(jax.random.key(0), shapes, rank=2))}
  adapted_logits = _apply(model, params, TOKENS).logits
  merged = lora.merge(params, shapes, scale=4.0 / 2)
  assert "lora" not in merged
  base_logits = _apply(base, _params(base, TOKENS), TOKENS).logits
  assert not np.allclose(adapted_logits, base_logits, atol=1e-3)  # B != 0 changes it.
  np.testing.assert_allclose(_apply(base, merged, TOKENS).logits, adapted_logits, rtol=1e-5,
                             atol=1e-5)


def test_prefix_entries_equal_a_dense_forward_with_them_concatenated_by_hand():
  base = Decoder(config=ROPE)
  model = adapted.Adapted(base=base, method="prefix", prefix_length=3)
  params = _params(model, TOKENS)
  entries = params["prefix"]
  by_hand = [PrefixKV(keys=entries["keys"][i][None], values=entries["values"][i][None])
             for i in range(ROPE.num_layers)]
  np.testing.assert_allclose(_apply(model, params, TOKENS).logits,
                             _apply(base, params, TOKENS, prefix=by_hand).logits, **TOLERANCE)
  # The tokens keep their own positions: 0 .. T-1, as without a prefix.
  zero = [PrefixKV(keys=p.keys[:, :0], values=p.values[:, :0]) for p in by_hand]
  np.testing.assert_array_equal(_apply(base, params, TOKENS, prefix=zero).logits,
                                _apply(base, params, TOKENS).logits)


def test_reparametrised_prefix_folds_into_plain_entries():
  base = Decoder(config=BASE)
  model = adapted.Adapted(base=base, method="prefix", prefix_length=3, prefix_hidden=8)
  params = _params(model, TOKENS)
  folded = adapted.fold_prefix(params, model)
  plain = adapted.Adapted(base=base, method="prefix", prefix_length=3)
  assert set(folded) - set(_params(base, TOKENS)) == {"prefix"}
  np.testing.assert_allclose(_apply(plain, folded, TOKENS).logits,
                             _apply(model, params, TOKENS).logits, **TOLERANCE)


def test_soft_prompt_acts_as_embeddings_before_the_tokens():
  base = Decoder(config=BASE)
  model = adapted.Adapted(base=base, method="prompt", prompt_length=2)
  params = _params(model, TOKENS)
  params["prompt"] = params["token_embedding"]["embedding"][jnp.asarray([3, 1])]
  full = _apply(base, params, jnp.concatenate([jnp.broadcast_to(jnp.asarray([[3, 1]]), (2, 2)),
                                               TOKENS], axis=1)).logits
  np.testing.assert_allclose(_apply(model, params, TOKENS).logits, full[:, 2:], **TOLERANCE)


# LoRA here; prefix and prompt in the slow tier (test_model_interface.py checks their cache
# entries and embeddings against the full forward in the default tier).
@pytest.mark.parametrize("method", ["lora", pytest.param("prefix", marks=pytest.mark.slow),
                                    pytest.param("prompt", marks=pytest.mark.slow)])
def test_kv_cached_decoding_equals_the_full_forward_with_the_adapter(method):
  base = Decoder(config=ROPE)
  if method == "lora":
    model, _ = _lora_model(ROPE, targets=(".*/kernel",), base=base)
  else:
    model = adapted.Adapted(base=base, method=method, prefix_length=3, prompt_length=2)
  params = _params(model, TOKENS)
  prompts = TOKENS[:, :3]
  generate = jax.jit(lambda p: model_steps.generate(
      model, p, prompts, jnp.asarray([3, 3], jnp.int32), sampler=samplers.greedy,
      max_new_tokens=3, key=jax.random.key(0))[0])
  new = generate(params)
  # The uncached model, one token at a time, with the adapter on.
  tokens = prompts
  for _ in range(3):
    logits = _apply(model, params, tokens).logits
    tokens = jnp.concatenate([tokens, jnp.argmax(logits[:, -1:], -1).astype(jnp.int32)], 1)
  np.testing.assert_array_equal(new, tokens[:, 3:])


@pytest.mark.parametrize("make", [EncoderClassifier, DecoderClassifier])
def test_classifiers_take_adapters_and_keep_their_bodys_names(make):
  config = dataclasses.replace(BASE, norm_position="post") if make is EncoderClassifier else BASE
  base = make(config=config, num_classes=3)
  segments = jnp.asarray([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], jnp.int32)
  params = _params(base, TOKENS)
  assert "classifier" in params and ("encoder" in params or "block_0" in params)
  out = _apply(base, params, TOKENS, segment_ids=segments)
  assert out.logits.shape == (2, 3)
  # Padding after the last real token changes nothing.
  changed = _apply(base, params, TOKENS.at[0, 5].set(7), segment_ids=segments)
  np.testing.assert_allclose(changed.logits[0], out.logits[0], **TOLERANCE)
  model = adapted.Adapted(base=base, method="prompt", prompt_length=2)
  adapted_params = _params(model, TOKENS)
  assert _apply(model, adapted_params, TOKENS, segment_ids=segments).logits.shape == (2, 3)


@pytest.mark.parametrize("make", [EncoderClassifier, DecoderClassifier])
def test_mean_pooling_reads_the_real_tokens_mean_with_the_same_parameters(make):
  config = dataclasses.replace(BASE, norm_position="post") if make is EncoderClassifier else BASE
  token, mean = (make(config=dataclasses.replace(config, classifier_pooling=pooling),
                      num_classes=3) for pooling in ("token", "mean"))
  segments = jnp.asarray([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], jnp.int32)
  params = _params(token, TOKENS)
  assert jax.tree.structure(_params(mean, TOKENS)) == jax.tree.structure(params)
  out = _apply(mean, params, TOKENS, segment_ids=segments)
  # By hand: the mean of the real tokens' hidden states, through the pooler (encoder) and head.
  real = np.asarray(segments, np.float32)[..., None]
  pooled = np.sum(np.asarray(out.hidden_states) * real, 1) / np.sum(real, 1)
  if make is EncoderClassifier:
    pooler = params["pooler"]
    pooled = np.tanh(pooled @ np.asarray(pooler["kernel"]) + np.asarray(pooler["bias"]))
  head = params["classifier"]
  expected = pooled @ np.asarray(head["kernel"]) + np.asarray(head["bias"])
  np.testing.assert_allclose(out.logits, expected, **TOLERANCE)
  assert not np.allclose(out.logits, _apply(token, params, TOKENS, segment_ids=segments).logits)
  # Padding still changes nothing.
  changed = _apply(mean, params, TOKENS.at[0, 5].set(7), segment_ids=segments)
  np.testing.assert_allclose(changed.logits[0], out.logits[0], **TOLERANCE)
