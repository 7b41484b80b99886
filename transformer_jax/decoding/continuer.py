"""Continuing prompts with a decoder-only model (clm): text in, text out.

  continue_text(params, prompt)    one prompt, decode.max_new_tokens new tokens, in one jit:
                                   KV-cached while the context fits model.max_length, then
                                   by the sliding window (no cache) beyond it; EOS does not
                                   stop it. Returns prompt + continuation: what
                                   `--mode=sample --prompt` prints.
  continue_batch(params, prompts)  every prompt at once, as one left-padded ragged batch
                                   (KV-cached): up to decode.max_new_tokens each, fewer when
                                   the longest prompt leaves less room in model.max_length;
                                   EOS, where the tokenizer has one, ends a row. Returns the
                                   continuations: `--prompts_file`, and `LoadedModel.generate`.
  n_best(params, prompts)          decode.strategy=beam: each prompt's decode.beam_size best
                                   continuations, best first, as (text, score, log P).
The compiled functions are kept, one per shape: a second call whose prompts pad to the
same length compiles nothing. decode.seed seeds sampling.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, ContextManager, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from transformer_jax.config_sections import DecodeConfig
from transformer_jax.data.tokenizers import special_tokens
from transformer_jax.decoding import generate, kv_decoding, model_steps, samplers
from transformer_jax.decoding.beam_search import BeamOptions
from transformer_jax.errors import DataError

NBest = list[tuple[str, float, float]]  # (text, score, log P), best first.


class Continuer:
  """Continues prompts with `model` (unrolled layers; see the module docstring)."""

  def __init__(self, model: nn.Module, tokenizer: Any, decode: DecodeConfig,
               context: Callable[[], ContextManager] = contextlib.nullcontext,
               prepare: Callable[[Any], Any] = lambda params: params):
    """context: entered around each compiled call (a mesh and its axis rules);
    prepare(params): the parameters `model` decodes with (e.g. unstacked layers)."""
    self.model, self.tokenizer, self.decode = model, tokenizer, decode
    self.context, self.prepare = context, prepare
    self.length = model.config.max_length
    self.sampler = samplers.for_strategy(decode.strategy, decode.temperature, decode.top_k,
                                         decode.top_p)
    has_eos = special_tokens.EOS in getattr(tokenizer, "special_tokens", ())
    self.stop_tokens = (tokenizer.token_id(special_tokens.EOS),) if has_eos else ()
    self._compiled: dict[tuple, Callable] = {}

  def _cached(self, key: tuple, make: Callable[[], Callable]) -> Callable:
    if key not in self._compiled:
      self._compiled[key] = make()
    return self._compiled[key]

  def continue_text(self, params: Any, prompt: str) -> str:
    d, length = self.decode, self.length
    prompt_ids = self.tokenizer.encode(prompt)
    if len(prompt_ids) == 0:
      raise DataError("the prompt is empty")
    size = max(len(prompt_ids) + d.max_new_tokens, length)
    buffer = np.zeros((1, size), np.int32)
    buffer[0, :len(prompt_ids)] = prompt_ids
    # The cache holds prompt + new tokens - 1 slots; a prompt longer than the context gets none.
    num_cached = min(d.max_new_tokens, max(length + 1 - len(prompt_ids), 0))
    run = self._cached(("text", len(prompt_ids), size),
                       lambda: jax.jit(functools.partial(self._text, len(prompt_ids),
                                                         num_cached)))
    with self.context():
      tokens = run(self.prepare(params), buffer, jax.random.key(d.seed))
    return self.tokenizer.decode(np.asarray(tokens)[0, :len(prompt_ids) + d.max_new_tokens])

  def _text(self, prompt_length: int, num_cached: int, params, buffer, key):
    cached_key, windowed_key = jax.random.split(key)
    if num_cached:
      new_tokens, _ = model_steps.generate(
          self.model, params, buffer[:, :prompt_length],
          jnp.full((1,), prompt_length, jnp.int32), sampler=self.sampler,
          max_new_tokens=num_cached, key=cached_key)
      buffer = jax.lax.dynamic_update_slice(buffer, new_tokens, (0, prompt_length))
    apply_logits = lambda tokens: self.model.apply({"params": params}, tokens,
                                                   deterministic=True).logits
    step_fn = generate.windowed_step_fn(apply_logits, self.length)
    return generate.generate(step_fn, self.sampler, buffer, prompt_length + num_cached,
                             self.decode.max_new_tokens - num_cached, windowed_key)

  def prompt_batch(self, prompts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """(tokens [B, P] left-padded, lengths [B], new tokens that fit model.max_length)."""
    return self.ids_batch([list(self.tokenizer.encode(prompt)) for prompt in prompts])

  def ids_batch(self, ids: Sequence[Sequence[int]],
                bucket: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """`prompt_batch` of prompts given as token ids, padded to at least `bucket` slots."""
    for number, prompt_ids in enumerate(ids, start=1):
      if not len(prompt_ids):
        raise DataError("the prompt is empty" if len(ids) == 1 else
                        f"prompt {number} is empty")
    bucket = max([bucket] + [len(prompt_ids) for prompt_ids in ids])
    max_new_tokens = min(self.decode.max_new_tokens, self.length + 1 - bucket)
    if max_new_tokens < 1:
      raise DataError(f"the longest prompt has {bucket} tokens: no room for a new token "
                      f"within model.max_length={self.length}")
    tokens, lengths = kv_decoding.left_pad([list(p) for p in ids], bucket)
    return tokens, lengths, max_new_tokens

  def continue_batch(self, params: Any, prompts: Sequence[str]) -> list[str]:
    return self.continue_ids(params, [list(self.tokenizer.encode(p)) for p in prompts])

  def continue_ids(self, params: Any, ids: Sequence[Sequence[int]], bucket: int = 0) -> list[str]:
    """`continue_batch` of prompts given as token ids (bucket: see `ids_batch`)."""
    tokens, lengths, max_new_tokens = self.ids_batch(ids, bucket)
    run = self._cached(("batch", max_new_tokens), lambda: jax.jit(functools.partial(
        model_steps.generate, self.model, sampler=self.sampler, max_new_tokens=max_new_tokens,
        stop_tokens=self.stop_tokens)))
    with self.context():
      new_tokens, new_lengths = run(self.prepare(params), jnp.asarray(tokens),
                                    jnp.asarray(lengths), key=jax.random.key(self.decode.seed))
    new_tokens, new_lengths = np.asarray(new_tokens), np.asarray(new_lengths)
    return [self.tokenizer.decode([int(t) for t in row[:count]
                                   if int(t) not in self.stop_tokens])
            for row, count in zip(new_tokens, new_lengths)]

  def n_best(self, params: Any, prompts: Sequence[str]) -> list[NBest]:
    """One left-padded KV-cached batch, so a continuation stops at EOS (where the tokenizer
    has one) or within model.max_length. Scores as in translation: log P / GNMT's length
    penalty (decode.length_penalty)."""
    d = self.decode
    tokens, lengths, max_new_tokens = self.prompt_batch(prompts)
    if max_new_tokens < d.max_new_tokens:
      logging.warning("beam search continues within model.max_length=%d: %d new tokens, not "
                      "decode.max_new_tokens=%d", self.length, max_new_tokens,
                      d.max_new_tokens)
    options = BeamOptions(beam_size=d.beam_size, alpha=d.length_penalty,
                          eos_token=self.stop_tokens[0] if self.stop_tokens else None)
    run = self._cached(("beam", max_new_tokens), lambda: jax.jit(functools.partial(
        model_steps.beam_search, self.model, options=options, max_new_tokens=max_new_tokens)))
    with self.context():
      result = jax.device_get(run(self.prepare(params), jnp.asarray(tokens),
                                  jnp.asarray(lengths)))
    n_best = []
    for row in range(len(prompts)):
      hypotheses = []
      for beam in range(d.beam_size):
        if not np.isfinite(result.scores[row, beam]):
          continue  # Fewer hypotheses exist than beams (a tiny vocabulary).
        kept = [int(t) for t in result.tokens[row, beam, :result.lengths[row, beam]]
                if int(t) not in self.stop_tokens]
        hypotheses.append((self.tokenizer.decode(kept), float(result.scores[row, beam]),
                           float(result.log_probs[row, beam])))
      n_best.append(hypotheses)
    return n_best


def n_best_text(prompts: Sequence[str], n_best: Sequence[NBest], numbered: bool) -> str:
  """One block per hypothesis: a header with its rank and scores, then prompt + text."""
  blocks = []
  for number, (prompt, hypotheses) in enumerate(zip(prompts, n_best), start=1):
    for rank, (text, score, log_prob) in enumerate(hypotheses, start=1):
      where = f"prompt {number}, " if numbered else ""
      blocks.append(f"===== {where}beam {rank} of {len(hypotheses)}: score {score:.4f} "
                    f"(log P {log_prob:.4f}) =====\n{prompt}{text}")
  return "\n".join(blocks)
