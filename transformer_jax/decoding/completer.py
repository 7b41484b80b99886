"""Completing prompts with a decoder-only model: text in, text out, in fixed batches.

The decoder-only counterpart of `translator.Translator`, for supervised fine-tuning's
template `prompt <eos> completion <eos>`: each prompt is encoded, followed by <eos>,
left-padded into a fixed [batch_size, bucket] shape (one compilation for all), and
continued with decode.strategy (greedy, sample or beam) until <eos> or
decode.max_new_tokens. The bucket is as long as the context leaves room for:
model.max_length - max_new_tokens + 1 slots; a longer prompt keeps its last tokens
and is counted in `num_cut`. With `shots` (few-shot prompting, `few_shot.py`), worked
examples precede every prompt; a prompt that leaves no room for all of them is counted
in `num_cut` too. Batches hold prompts of similar length (a stable sort),
outputs come back in input order.
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
from transformer_jax.decoding import few_shot, kv_decoding, model_steps, samplers
from transformer_jax.decoding.beam_search import BeamOptions


class Completer:
  """complete(params, prompts) -> one completion (text) per prompt."""

  def __init__(self, model: nn.Module, tokenizer: Any, decode: DecodeConfig, batch_size: int,
               context: Callable[[], ContextManager] = contextlib.nullcontext,
               prepare: Callable[[Any], Any] = lambda params: params,
               shots: Sequence[tuple[str, str]] = ()):
    """context: entered around each compiled call (a mesh and its axis rules);
    prepare(params): the parameters `model` decodes with (e.g. unstacked layers);
    shots: (prompt, completion) examples written before every prompt."""
    self.tokenizer, self.decode, self.batch_size, self.context = tokenizer, decode, batch_size, context
    self.prepare = prepare
    self.eos = tokenizer.token_id(special_tokens.EOS)
    self.pad = tokenizer.token_id(special_tokens.PAD)
    length = model.config.max_length
    self.max_new_tokens = min(decode.max_new_tokens or length // 2, length - 1)
    self.bucket = length - self.max_new_tokens + 1
    self.num_cut = 0
    self.shots = [(list(tokenizer.encode(p)), list(tokenizer.encode(c))) for p, c in shots]
    if decode.strategy == "beam":
      options = BeamOptions(beam_size=decode.beam_size, alpha=decode.length_penalty,
                            eos_token=self.eos, pad_token=self.pad, num_exact=1)

      def best(params, prompts, lengths, key):  # pylint: disable=unused-argument
        result = model_steps.beam_search(model, params, prompts, lengths, options=options,
                                         max_new_tokens=self.max_new_tokens)
        return result.tokens[:, 0], result.lengths[:, 0]

      self._run = jax.jit(best)
    else:
      sampler = samplers.for_strategy(decode.strategy, decode.temperature, decode.top_k,
                                      decode.top_p)
      self._run = jax.jit(functools.partial(
          model_steps.generate, model, sampler=sampler, max_new_tokens=self.max_new_tokens,
          stop_tokens=(self.eos,), pad_token=self.pad))

  def _prompt_ids(self, prompt: str) -> list[int]:
    ids, cut = few_shot.prompt_ids(self.shots, self.tokenizer.encode(prompt), self.eos,
                                   self.bucket)
    self.num_cut += cut
    return ids

  def complete(self, params: Any, prompts: Sequence[str]) -> list[str]:
    params = self.prepare(params)
    ids = [self._prompt_ids(prompt) for prompt in prompts]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    key = jax.random.key(self.decode.seed)
    outputs = [""] * len(ids)
    for index, start in enumerate(range(0, len(ids), self.batch_size)):
      rows = order[start:start + self.batch_size]
      batch = [ids[i] for i in rows] + [[self.eos]] * (self.batch_size - len(rows))
      tokens, lengths = kv_decoding.left_pad(batch, self.bucket, self.pad)
      with self.context():
        new, new_lengths = self._run(params, jnp.asarray(tokens), jnp.asarray(lengths),
                                     key=jax.random.fold_in(key, index))
      new, new_lengths = np.asarray(new), np.asarray(new_lengths)
      for row, i in enumerate(rows):
        kept = [int(t) for t in new[row, :new_lengths[row]] if t not in (self.eos, self.pad)]
        outputs[i] = self.tokenizer.decode(kept)
    return outputs
