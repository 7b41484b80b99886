"""RMSNorm by hand, logical axis names of its parameter, and make_norm's choices."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from transformer_jax.config_sections import ModelConfig
from transformer_jax.models.block import norm as _layer_norm
from transformer_jax.models.normalization import NORMS, RMSNorm, make_norm

CONFIG = ModelConfig(num_layers=1, num_heads=1, model_dim=4, mlp_dim=8, max_length=4,
                     dropout_rate=0.0, use_bias=True, dtype="float32", vocab_size=5)


def test_norms_constant():
  assert NORMS == ("layernorm", "rmsnorm")


def test_rms_norm_by_hand():
  x = jnp.array([[3.0, 4.0]])
  norm = RMSNorm(epsilon=1e-6)
  variables = norm.init(jax.random.key(0), x)
  # mean(x²) = (9 + 16) / 2 = 12.5; scale starts at ones.
  expected = [3 / math.sqrt(12.5 + 1e-6), 4 / math.sqrt(12.5 + 1e-6)]
  np.testing.assert_allclose(norm.apply(variables, x)[0], expected, rtol=1e-6)


def test_rms_norm_applies_scale_and_casts_to_dtype():
  x = jnp.array([[3.0, 4.0]])
  norm = RMSNorm(dtype=jnp.bfloat16)
  params = {"scale": jnp.array([2.0, -1.0])}
  y = norm.apply({"params": params}, x)
  assert y.dtype == jnp.bfloat16
  rms = math.sqrt(12.5 + 1e-6)
  np.testing.assert_allclose(y[0].astype(jnp.float32), [6 / rms, -4 / rms], rtol=1e-2)


def test_rms_norm_scale_has_logical_axis_names():
  variables = RMSNorm().init(jax.random.key(0), jnp.ones((2, 3, 4)))
  boxed = variables["params"]["scale"]
  assert list(variables["params"]) == ["scale"]
  assert isinstance(boxed, nn.LogicallyPartitioned) and boxed.names == ("embed",)
  assert boxed.value.dtype == jnp.float32
  np.testing.assert_array_equal(boxed.value, jnp.ones(4))
  assert nn.get_partition_spec(variables)["params"]["scale"] == jax.sharding.PartitionSpec("embed")


def test_make_norm_kinds():
  layer = make_norm("layernorm", epsilon=1e-5, use_bias=True, dtype="float32", name="n")
  rms = make_norm("rmsnorm", epsilon=1e-6, use_bias=False, dtype="float32", name="n")
  assert type(layer) is nn.LayerNorm and layer.use_bias and layer.epsilon == 1e-5
  assert type(rms) is RMSNorm and rms.epsilon == 1e-6 and rms.dtype == "float32"


def test_make_norm_layernorm_matches_decoder_layer_norm():
  random = np.random.default_rng(0)
  x = random.normal(size=(2, 3, CONFIG.model_dim)).astype(np.float32)
  reference = _layer_norm(CONFIG, "final_norm")
  variables = reference.init(jax.random.key(1), x)
  # Non-trivial parameters, so scale and bias are both exercised.
  variables = jax.tree.map(lambda p: p + random.normal(size=p.shape).astype(np.float32),
                           variables)
  made = make_norm("layernorm", epsilon=1e-5, use_bias=CONFIG.use_bias, dtype=CONFIG.dtype,
                   name="final_norm")
  made_variables = made.init(jax.random.key(1), x)
  assert nn.get_partition_spec(made_variables) == nn.get_partition_spec(variables)
  np.testing.assert_array_equal(made.apply(variables, x), reference.apply(variables, x))


def test_make_norm_unknown_kind_names_field():
  with pytest.raises(ValueError, match=r"model\.norm must be one of layernorm, rmsnorm"):
    make_norm("batchnorm", epsilon=1e-5, use_bias=True, dtype="float32", name="n")
