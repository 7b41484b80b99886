"""AdamW's learning-rate schedule and which parameters get weight decay."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import clm
from transformer_jax import config_sections, configuration
from transformer_jax.models.decoder import Decoder
from transformer_jax.training.optimizer import decay_mask, learning_rate_schedule, make_optimizer


def _train_config(**overrides) -> config_sections.TrainConfig:
  train = configuration.validate(clm.get_config("tiny")).train
  return dataclasses.replace(train, **overrides)


def test_decay_mask_is_true_for_matrices_only():
  params = {"kernel": jnp.zeros((3, 4)), "attention_kernel": jnp.zeros((4, 2, 2)),
            "embedding": jnp.zeros((5, 4)), "bias": jnp.zeros(4), "scale": jnp.zeros(4),
            "step": jnp.zeros(()), "query": {"bias": jnp.zeros((2, 2))}}
  assert decay_mask(params) == {"kernel": True, "attention_kernel": True, "embedding": True,
                                "bias": False, "scale": False, "step": False,
                                "query": {"bias": False}}  # Biases never, even 2-D ones.


def test_decay_mask_on_the_decoder():
  model_cfg = dataclasses.replace(configuration.validate(clm.get_config("tiny")).model,
                                  use_bias=True, vocab_size=7)
  params = jax.eval_shape(lambda: Decoder(model_cfg).init(
      jax.random.key(0), jnp.zeros((1, 4), jnp.int32), deterministic=True)["params"])
  flat = jax.tree_util.tree_flatten_with_path(decay_mask(params))[0]
  names = {jax.tree_util.keystr(path): mask for path, mask in flat}
  assert len(names) > 10
  # Attention biases are [heads, head_dim]: 2-D, yet not decayed.
  assert names["['block_0']['attention']['query']['bias'].value"] is False
  for name, mask in names.items():
    # Kernels and embeddings decay; biases and LayerNorm scales do not.
    assert mask == name.endswith(("['kernel'].value", "['embedding'].value")), name


@pytest.mark.parametrize("step, expected", [
    (0, 0.0),
    (5, 5e-4),  # Halfway through the linear warmup.
    (10, 1e-3),  # Peak at warmup_steps.
    (60, 1e-4 + 9e-4 * 0.5 * (1 + math.cos(math.pi * 0.5))),  # Half the cosine: 5.5e-4.
    (110, 1e-4),  # end_learning_rate at decay_steps...
    (500, 1e-4),  # ...and after.
])
def test_learning_rate_schedule(step, expected):
  schedule = learning_rate_schedule(_train_config(
      learning_rate=1e-3, end_learning_rate=1e-4, warmup_steps=10, decay_steps=110))
  assert float(schedule(step)) == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_weight_decay_skips_vectors():
  # Zero gradients: Adam's step is 0, so the update is weight decay alone, lr * wd * p.
  config = _train_config(learning_rate=1e-3, end_learning_rate=1e-4, warmup_steps=0,
                         decay_steps=100, weight_decay=0.1)
  optimizer = make_optimizer(config)
  params = {"kernel": jnp.full((2, 3), 2.0), "bias": jnp.full((3,), 2.0)}
  grads = jax.tree_util.tree_map(jnp.zeros_like, params)
  updates, _ = optimizer.update(grads, optimizer.init(params), params)
  np.testing.assert_allclose(updates["kernel"], np.full((2, 3), -1e-3 * 0.1 * 2.0), rtol=1e-6)
  np.testing.assert_array_equal(updates["bias"], np.zeros(3))
