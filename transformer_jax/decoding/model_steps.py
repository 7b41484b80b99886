"""Prefill and step functions for the repository's models, and whole decodes built on them.

Decoder-only (`Decoder`): prompts [B, P] left-padded (`kv_decoding.left_pad`),
with their lengths [B]; the prefill runs the model once over the prompts and
fills P cache slots, each step adds one token at position prompt length + step.
Encoder-decoder (`EncoderDecoder`): the encoder runs once, in the prefill; the
decoder starts from <bos>, and its first call also stores each layer's
cross-attention keys and values, so steps neither re-encode the source nor
re-project it.

Every function here is traceable: wrap it in `jax.jit` with the Python options
bound (`functools.partial`), and it compiles once per (B, P, max_new_tokens).
"""

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.decoding import beam_search as beam_search_lib
from transformer_jax.decoding import kv_decoding
from transformer_jax.decoding.beam_search import BeamOptions, BeamResult
from transformer_jax.decoding.kv_decoding import StepFn
from transformer_jax.decoding.samplers import Sampler
from transformer_jax.models import kv_cache

Params = Any


def decoder_prefill(model: nn.Module, params: Params, prompts: jax.Array,
                    prompt_lengths: jax.Array,
                    cache_length: int) -> tuple[jax.Array, kv_cache.DecoderCache]:
  """prompts [B, P] left-padded, prompt_lengths [B] -> (logits [B, V] for the first new
  token, a cache of cache_length slots with P written)."""
  batch, bucket_length = prompts.shape
  positions, segment_ids = kv_decoding.prompt_positions(bucket_length, prompt_lengths)
  cache = kv_cache.init(model.config, batch, cache_length)
  out = model.apply({"params": params}, prompts, deterministic=True, positions=positions,
                    segment_ids=segment_ids, cache=cache, last_logits_only=True)
  return out.logits[:, 0], out.cache


def decoder_step_fn(model: nn.Module, params: Params, prompt_lengths: jax.Array) -> StepFn:
  """The step function of a decoder-only model; prompt_lengths [B] as the cache's rows."""

  def step_fn(tokens, cache, step):
    positions = (prompt_lengths + step)[:, None]
    out = model.apply({"params": params}, tokens[:, None], deterministic=True,
                      positions=positions, cache=cache)
    return out.logits[:, 0], out.cache

  return step_fn


def generate(model: nn.Module, params: Params, prompts: jax.Array, prompt_lengths: jax.Array,
             *, sampler: Sampler, max_new_tokens: int, key: jax.Array,
             stop_tokens: Sequence[int] = (), pad_token: int = 0) -> tuple[jax.Array, jax.Array]:
  """Continues each left-padded prompt: (tokens [B, max_new_tokens], lengths [B]).

  See `kv_decoding.sample_loop` for stop tokens, padding and seeds.
  """
  cache_length = kv_decoding.check_context(prompts.shape[1], max_new_tokens,
                                           model.config.max_length)
  logits, cache = decoder_prefill(model, params, prompts, prompt_lengths, cache_length)
  return kv_decoding.sample_loop(
      decoder_step_fn(model, params, prompt_lengths), sampler, logits, cache,
      max_new_tokens=max_new_tokens, key=key, stop_tokens=stop_tokens, pad_token=pad_token)


def beam_search(model: nn.Module, params: Params, prompts: jax.Array, prompt_lengths: jax.Array,
                *, options: BeamOptions, max_new_tokens: int) -> BeamResult:
  """The n-best continuations of each left-padded prompt ([B, N, max_new_tokens])."""
  cache_length = kv_decoding.check_context(prompts.shape[1], max_new_tokens,
                                           model.config.max_length)
  logits, cache = decoder_prefill(model, params, prompts, prompt_lengths, cache_length)
  beams = options.beam_size
  step_fn = decoder_step_fn(model, params, jnp.repeat(prompt_lengths, beams))
  return beam_search_lib.beam_search(step_fn, logits, beam_search_lib.repeat_beams(cache, beams),
                                     options=options, max_new_tokens=max_new_tokens)


def seq2seq_prefill(model: nn.Module, params: Params, source: jax.Array,
                    source_segment_ids: jax.Array, *, bos_token: int,
                    max_new_tokens: int) -> tuple[jax.Array, kv_cache.DecoderCache, jax.Array]:
  """Encodes source [B, S] once and feeds <bos>: (logits [B, V], cache, encoded [B, S, D]).

  The cache has max_new_tokens slots (<bos> and every new token but the last) and
  holds the cross-attention keys and values.
  """
  batch = source.shape[0]
  cache_length = kv_decoding.check_context(1, max_new_tokens, model.config.max_length)
  encoded = model.apply({"params": params}, source, deterministic=True,
                        source_segment_ids=source_segment_ids, method="encode").hidden_states
  cache = kv_cache.init(model.config, batch, cache_length)
  bos = jnp.full((batch, 1), bos_token, jnp.int32)
  out = model.apply({"params": params}, encoded, bos, deterministic=True,
                    source_segment_ids=source_segment_ids, cache=cache, method="decode")
  return out.logits[:, 0], out.cache, encoded


def seq2seq_step_fn(model: nn.Module, params: Params, encoded: jax.Array,
                    source_segment_ids: jax.Array) -> StepFn:
  """The step function of an encoder-decoder whose cache holds the cross-attention keys.

  encoded [B, S, D] only marks the decoder as cross-attending: the filled cache
  is read instead, so its values are never used.
  """

  def step_fn(tokens, cache, step):  # pylint: disable=unused-argument
    out = model.apply({"params": params}, encoded, tokens[:, None], deterministic=True,
                      source_segment_ids=source_segment_ids, cache=cache, method="decode")
    return out.logits[:, 0], out.cache

  return step_fn


def translate(model: nn.Module, params: Params, source: jax.Array,
              source_segment_ids: jax.Array, *, bos_token: int, sampler: Sampler,
              max_new_tokens: int, key: jax.Array, stop_tokens: Sequence[int] = (),
              pad_token: int = 0) -> tuple[jax.Array, jax.Array]:
  """Samples a target for each source [B, S]: (tokens [B, max_new_tokens], lengths [B])."""
  logits, cache, encoded = seq2seq_prefill(model, params, source, source_segment_ids,
                                           bos_token=bos_token, max_new_tokens=max_new_tokens)
  return kv_decoding.sample_loop(
      seq2seq_step_fn(model, params, encoded, source_segment_ids), sampler, logits, cache,
      max_new_tokens=max_new_tokens, key=key, stop_tokens=stop_tokens, pad_token=pad_token)


def translate_beam_search(model: nn.Module, params: Params, source: jax.Array,
                          source_segment_ids: jax.Array, *, bos_token: int,
                          options: BeamOptions, max_new_tokens: int) -> BeamResult:
  """The n-best targets of each source [B, S] ([B, N, max_new_tokens])."""
  logits, cache, encoded = seq2seq_prefill(model, params, source, source_segment_ids,
                                           bos_token=bos_token, max_new_tokens=max_new_tokens)
  beams = options.beam_size
  step_fn = seq2seq_step_fn(model, params, jnp.repeat(encoded, beams, axis=0),
                            jnp.repeat(source_segment_ids, beams, axis=0))
  return beam_search_lib.beam_search(step_fn, logits, beam_search_lib.repeat_beams(cache, beams),
                                     options=options, max_new_tokens=max_new_tokens)
