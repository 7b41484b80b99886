"""Small models with random parameters for the decoding tests, and the uncached reference."""

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from transformer_jax.config_sections import ModelConfig
from transformer_jax.models.decoder import Decoder
from transformer_jax.models.encoder_decoder import EncoderDecoder

BASE = ModelConfig(num_layers=2, num_heads=4, model_dim=16, mlp_dim=32, max_length=12,
                   dropout_rate=0.0, use_bias=True, dtype="float32", vocab_size=11)
SEQ2SEQ = dataclasses.replace(BASE, num_encoder_layers=1, position="sinusoidal", num_kv_heads=2)


def random_params(model, *example_inputs, seed=0, stddev=0.5):
  """Parameters drawn in numpy (no op-by-op init), large enough that attention is far
  from uniform and greedy outputs vary (GPT-2's 0.02 makes every row repeat one token)."""
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), *example_inputs,
                                             deterministic=True))["params"]
  generator = np.random.default_rng(seed)
  return jax.tree_util.tree_map(
      lambda leaf: jnp.asarray(generator.normal(0.0, stddev, leaf.shape), jnp.float32),
      nn.unbox(shapes))


def decoder_and_params(config, seed=0, stddev=0.5):
  model = Decoder(config)
  return model, random_params(model, jnp.zeros((1, config.max_length), jnp.int32), seed=seed,
                              stddev=stddev)


@functools.partial(jax.jit, static_argnums=(0,))
def full_forward(model, params, tokens):
  return model.apply({"params": params}, tokens, deterministic=True).logits


def full_logits(model, params, tokens):
  """Logits [len(tokens), V] of the uncached model, compiled once: the buffer is padded on
  the right to max_length, which the causal mask hides from earlier positions."""
  buffer = np.zeros((1, model.config.max_length), np.int32)
  buffer[0, :len(tokens)] = tokens
  return np.asarray(full_forward(model, params, buffer))[0, :len(tokens)]


def seq2seq_model():
  """(EncoderDecoder, params, source [2, 5] with padding, source_segment_ids)."""
  model = EncoderDecoder(SEQ2SEQ)
  source = jnp.asarray([[3, 4, 5, 6, 0], [7, 8, 0, 0, 0]], jnp.int32)
  source_segment_ids = (source != 0).astype(jnp.int32)
  params = random_params(model, source, source[:, :3], seed=0, stddev=1.0)
  return model, params, source, source_segment_ids
