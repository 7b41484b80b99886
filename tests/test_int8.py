"""model.quantize=int8: per-output-channel symmetric int8 weights through the one matmul path."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_config
from decoding_models import BASE, decoder_and_params
from transformer_jax.tasks import clm as clm_experiment
from transformer_jax.run import train as train_lib
from transformer_jax.run import weights
from transformer_jax.run import evaluate as evaluate_lib
from transformer_jax.errors import ConfigError
from transformer_jax.interop import native_export
from transformer_jax.models import kv_cache
from transformer_jax.quantization import int8

TOKENS = jnp.asarray([[3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8]], jnp.int32)


def test_a_hand_computed_kernel():
  # Column scales: 1/127 and 2/127; -0.5 / (2/127) = -31.75 and 0.25 / (1/127) = 31.75 round
  # away to -32 and 32.
  values, scale = int8.quantize_array(jnp.asarray([[1.0, -0.5], [0.25, 2.0]]), 1)
  assert values.dtype == jnp.int8 and values.tolist() == [[127, -32], [32, 127]]
  np.testing.assert_allclose(scale, [1 / 127, 2 / 127], rtol=1e-7)
  # A zero column keeps scale 1 (no division by zero) and stays zero.
  values, scale = int8.quantize_array(jnp.zeros((3, 2)), 1)
  assert not values.any() and scale.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("shape, output_axes", [((16, 4, 8), 2), ((4, 8, 16), 1), ((11, 16), -1)])
def test_dequantized_weights_are_within_half_a_step(shape, output_axes):
  weights = jax.random.normal(jax.random.key(0), shape) * 0.3
  values, scale = int8.quantize_array(weights, output_axes)
  restored = int8.dequantize_array(values, scale, output_axes)
  half_step = scale / 2 if output_axes > 0 else (scale / 2)[:, None]
  assert (np.abs(np.asarray(restored - weights)) <= np.asarray(half_step) * (1 + 1e-6)).all()
  assert np.abs(np.asarray(values)).max() == 127  # Each channel's largest weight is +-127.


class _Jitted:
  """model.apply, compiled (the interceptor acts while tracing)."""

  def __init__(self, model):
    self.apply = jax.jit(model.apply, static_argnames="deterministic")


@pytest.fixture(scope="module")
def quantized():
  model, params = decoder_and_params(BASE, stddev=0.3)
  wrapped = int8.Int8Model(model, [jnp.zeros((1, BASE.max_length), jnp.int32)])
  return _Jitted(model), params, wrapped, wrapped.quantize(params)


def test_every_weight_matmul_sees_an_int8_kernel_the_tied_projection_too(quantized):
  model, params, wrapped, qparams = quantized
  axes = wrapped.output_axes(jax.eval_shape(lambda: params))
  wrapped = _Jitted(wrapped)
  assert axes["token_embedding/embedding"] == -1 and len(axes) == 13
  assert qparams["token_embedding"]["embedding"].dtype == jnp.int8
  assert qparams["token_embedding"]["embedding_scale"].shape == (BASE.vocab_size,)
  assert qparams["block_0"]["attention"]["query"]["kernel_scale"].shape == (4, 4)  # [H, K]
  assert qparams["position_embedding"]["embedding"].dtype == jnp.float32  # Not a matmul.
  # The int8 model computes exactly what the float model computes with q · scale weights.
  logits = wrapped.apply({"params": qparams}, TOKENS, deterministic=True).logits
  dequantized = model.apply({"params": int8.dequantize(qparams, axes)}, TOKENS,
                            deterministic=True).logits
  np.testing.assert_allclose(logits, dequantized, rtol=2e-5, atol=2e-5)
  float_logits = model.apply({"params": params}, TOKENS, deterministic=True).logits
  assert 0 < np.abs(np.asarray(logits - float_logits)).max() < 0.05 * np.abs(float_logits).max()


def test_quantized_decoding_with_the_cache_equals_the_quantized_full_forward(quantized):
  _, _, wrapped, qparams = quantized
  wrapped = _Jitted(wrapped)
  full = wrapped.apply({"params": qparams}, TOKENS, deterministic=True).logits
  prefill = wrapped.apply({"params": qparams}, TOKENS[:, :5], deterministic=True,
                          cache=kv_cache.init(BASE, 2, 8))
  np.testing.assert_allclose(prefill.logits, full[:, :5], rtol=1e-5, atol=1e-5)
  cache = prefill.cache
  for position in range(5, 8):
    step = wrapped.apply({"params": qparams}, TOKENS[:, position:position + 1],
                         deterministic=True, cache=cache)
    cache = step.cache
    np.testing.assert_allclose(step.logits[:, 0], full[:, position], rtol=1e-5, atol=1e-5)


def test_the_int8_tiny_model_evaluates_close_to_float(tiny_run, tmp_path):
  losses = {}
  for quantize in ("none", "int8"):
    task = clm_experiment.build_task(tiny_config(**{"model.quantize": quantize}), str(tiny_run),
                                     need_data=True)
    params, step = weights.inference_state(task)
    assert step == 20
    losses[quantize] = evaluate_lib.evaluate_params(task, params,
                                                task.data.eval_batches())["eval_loss"]
    if quantize == "int8":  # The native export: int8 kernels at about a quarter of the bytes.
      native_export.write(str(tmp_path / "int8"), task.cfg, task.tokenizer, params)
      read, config = native_export.read(str(tmp_path / "int8"))
      assert config["model"]["quantize"] == "int8"
      assert read["block_0"]["mlp"]["input"]["kernel"].dtype == np.int8
      kernel = task.trainer.abstract_state.params["block_0"]["mlp"]["input"]["kernel"]
      assert read["block_0"]["mlp"]["input"]["kernel"].nbytes == np.prod(kernel.shape)  # 1 B
  assert losses["int8"] != losses["none"]
  assert abs(losses["int8"] - losses["none"]) < 0.01 * losses["none"]


def test_quantize_is_refused_for_training_before_anything_is_written(tmp_path):
  task = clm_experiment.build_task(tiny_config(**{"model.quantize": "int8"}),
                                   str(tmp_path / "run"), need_data=True)
  with pytest.raises(ConfigError) as error:
    train_lib.train(task, 1)
  assert str(error.value) == ("config.model.quantize: int8 is for inference (eval, sample, "
                              "translate, attention, export), not training; set it to none")
  assert not (tmp_path / "run").exists()


def test_a_model_without_int8_weights_is_untouched(quantized):
  model, params, wrapped, _ = quantized
  wrapped = _Jitted(wrapped)
  np.testing.assert_array_equal(
      wrapped.apply({"params": params}, TOKENS, deterministic=True).logits,
      model.apply({"params": params}, TOKENS, deterministic=True).logits)
