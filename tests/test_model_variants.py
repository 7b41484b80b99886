"""Decoder variants selected by model.* fields: each is causal, and sizes are the published ones."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import last_line, run_launch
from configs import clm
from transformer_jax import configuration
from transformer_jax.config_sections import ModelConfig
from transformer_jax.errors import ConfigError
from transformer_jax.models.decoder import Decoder

BASE = ModelConfig(num_layers=2, num_heads=4, model_dim=16, mlp_dim=32, max_length=8,
                   dropout_rate=0.0, use_bias=True, dtype="float32", attention="scaled_dot",
                   attention_impl="plain", num_kv_heads=0, position="learned",
                   norm="layernorm", norm_position="pre", activation="gelu", vocab_size=11)

VARIANTS = {
    "dot": dict(attention="dot"),
    "additive": dict(attention="additive"),
    "grouped_query": dict(num_kv_heads=2),
    "multi_query": dict(num_kv_heads=1),
    "fused": dict(attention_impl="fused"),
    "rope": dict(position="rope"),
    "sinusoidal": dict(position="sinusoidal"),
    "no_positions": dict(position="none"),
    "rmsnorm_post_norm": dict(norm="rmsnorm", norm_position="post"),
    "swiglu_relu": dict(activation="swiglu"),
    "relu": dict(activation="relu"),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_no_future_leak(name):
  model = Decoder(dataclasses.replace(BASE, **VARIANTS[name]))
  tokens = jnp.array([[1, 2, 3, 4, 5, 6, 7, 8]])
  params = model.init(jax.random.key(0), tokens, deterministic=True)["params"]
  apply = jax.jit(lambda t: model.apply({"params": params}, t, deterministic=True).logits)
  logits = apply(tokens)
  for t in (0, 3, 6):  # Change token t+1: logits at positions <= t must not move.
    changed = apply(tokens.at[0, t + 1].set(10))
    np.testing.assert_array_equal(changed[0, :t + 1], logits[0, :t + 1])
    assert not np.allclose(changed[0, t + 1:], logits[0, t + 1:])


def test_gpt2_small_has_the_published_parameter_count():
  gpt2 = dataclasses.replace(BASE, num_layers=12, num_heads=12, model_dim=768, mlp_dim=3072,
                             max_length=1024, vocab_size=50257)
  shapes = jax.eval_shape(lambda k: Decoder(gpt2).init(
      k, jnp.zeros((1, 8), jnp.int32), deterministic=True)["params"], jax.random.key(0))
  count = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(nn.unbox(shapes)))
  assert count == 124_439_808  # GPT-2 small with tied input/output embeddings.


@pytest.mark.parametrize("overrides, field", [
    (dict(num_kv_heads=3), "model.num_kv_heads"),
    (dict(position="rope", model_dim=12, num_heads=4), "model.position"),  # Head dim 3.
    (dict(attention="cosine"), "model.attention"),
    (dict(attention="additive", attention_impl="fused"), "model.attention_impl"),
    (dict(norm="batchnorm"), "model.norm"),
])
def test_invalid_variants_name_the_field(overrides, field):
  config = clm.get_config("tiny")
  for key, value in overrides.items():
    setattr(config.model, key, value)
  with pytest.raises(ConfigError, match=field):
    configuration.validate(config)


@pytest.mark.slow  # A long end-to-end run; each variant's own tests above are in-process.
def test_a_modern_variant_trains_from_launch(tmp_path):
  result = run_launch(
      "--config=configs/clm.py:tiny", f"--workdir={tmp_path / 'w'}",
      "--config.model.position=rope", "--config.model.norm=rmsnorm",
      "--config.model.activation=swiglu", "--config.model.num_kv_heads=1",
      "--config.decode.max_new_tokens=0")
  assert result.returncode == 0, last_line(result.stderr)
  from transformer_jax.training.metrics_writer import read_metrics  # pylint: disable=import-outside-toplevel
  losses = [r["train_loss"] for r in read_metrics(str(tmp_path / "w")) if "train_loss" in r]
  assert losses[-1] < losses[0]
