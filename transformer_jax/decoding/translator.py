"""Translating sentences with a trained EncoderDecoder: text in, text out, in fixed batches.

Why a class of its own: `model_steps.translate` and `translate_beam_search` work on
token arrays of one shape; turning a list of sentences into such batches (source +
EOS, cut to the context, padded), compiling once, and turning tokens back into text
is the same for --mode=translate, the test BLEU of --mode=eval and any script.

Every batch has the same shape [batch_size, model.max_length], so one jit serves
all; the last batch is filled with one-token (EOS) sources whose outputs are
dropped, and rows never see each other, so batching does not change a greedy or
beam translation. A source longer than model.max_length - 1 tokens is cut (EOS
still ends it) and counted in `num_cut`. Decoding stops at EOS or after
decode.max_new_tokens tokens (0: model.max_length).
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, ContextManager, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from transformer_jax.config_sections import DecodeConfig
from transformer_jax.data.tokenizers import special_tokens
from transformer_jax.decoding import model_steps, samplers
from transformer_jax.decoding.beam_search import BeamOptions


class Translator:
  """translate(params, sentences) -> one string each, by decode.strategy (greedy, sample or
  beam). The parameters are an argument, so training compiles once and translates with
  each evaluation's parameters."""

  def __init__(self, model: nn.Module, tokenizer: Any, decode: DecodeConfig, batch_size: int,
               context: Callable[[], ContextManager] = contextlib.nullcontext,
               prepare: Callable[[Any], Any] = lambda params: params):
    """context: entered around each compiled call (e.g. a mesh and axis rules);
    prepare(params): the parameters `model` decodes with (e.g. another layer layout)."""
    if batch_size < 1:
      raise ValueError(f"batch_size must be positive, got {batch_size}")
    self.tokenizer = tokenizer
    self.decode = decode
    self.batch_size = batch_size
    self.context = context
    self.prepare = prepare
    self.max_length = model.config.max_length
    self.pad = tokenizer.token_id(special_tokens.PAD)
    self.bos = tokenizer.token_id(special_tokens.BOS)
    self.eos = tokenizer.token_id(special_tokens.EOS)
    self.max_new_tokens = min(decode.max_new_tokens or self.max_length, self.max_length)
    self.num_cut = 0  # Sources cut to fit model.max_length, over every call.
    if decode.strategy == "beam":
      # Only the best hypothesis is used, so the search may stop once it is final.
      options = BeamOptions(beam_size=decode.beam_size, alpha=decode.length_penalty,
                            eos_token=self.eos, pad_token=self.pad, num_exact=1)

      def best(params, source, segment_ids, key):  # pylint: disable=unused-argument
        result = model_steps.translate_beam_search(
            model, params, source, segment_ids, bos_token=self.bos, options=options,
            max_new_tokens=self.max_new_tokens)
        return result.tokens[:, 0], result.lengths[:, 0]

      self._run = jax.jit(best)
    else:
      sampler = samplers.for_strategy(decode.strategy, decode.temperature, decode.top_k,
                                      decode.top_p)
      self._run = jax.jit(functools.partial(
          model_steps.translate, model, bos_token=self.bos, sampler=sampler,
          max_new_tokens=self.max_new_tokens, stop_tokens=(self.eos,), pad_token=self.pad))

  def _source_batch(self, ids: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """([batch_size, max_length] source + EOS, padded; its segment ids), fill rows EOS."""
    shape = (self.batch_size, self.max_length)
    source, segment_ids = np.full(shape, self.pad, np.int32), np.zeros(shape, np.int32)
    source[:, 0], segment_ids[:, 0] = self.eos, 1  # Fill rows: a one-token source.
    for row, sentence in enumerate(ids):
      if len(sentence) > self.max_length - 1:
        self.num_cut += 1
        sentence = sentence[:self.max_length - 1]
      tokens = list(sentence) + [self.eos]
      source[row, :len(tokens)] = tokens
      segment_ids[row, :len(tokens)] = 1
    return source, segment_ids

  def translate(self, params: Any, sentences: Sequence[str]) -> list[str]:
    """One translation per sentence, in the sentences' order.

    Batches are made of sentences of similar token counts (a stable sort by
    length), so a batch's decoding loop, which runs until its longest translation
    ends, stops sooner; greedy and beam translations do not depend on the batch.
    Sampling: batch k (in that sorted order) draws with fold_in(decode.seed, k).
    """
    params = self.prepare(params)
    ids = [np.asarray(self.tokenizer.encode(sentence), np.int32) for sentence in sentences]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    key = jax.random.key(self.decode.seed)
    outputs: list[str] = [""] * len(ids)
    for index, start in enumerate(range(0, len(ids), self.batch_size)):
      rows = order[start:start + self.batch_size]
      source, segment_ids = self._source_batch([ids[i] for i in rows])
      with self.context():
        tokens, lengths = self._run(params, jnp.asarray(source), jnp.asarray(segment_ids),
                                    key=jax.random.fold_in(key, index))
      tokens, lengths = np.asarray(tokens), np.asarray(lengths)
      for row, sentence_index in enumerate(rows):
        kept = [int(t) for t in tokens[row, :lengths[row]] if t not in (self.eos, self.pad)]
        outputs[sentence_index] = self.tokenizer.decode(kept)
    return outputs
