"""Hidden states of texts for every family (`LoadedModel.hidden_states`).

Each text becomes the row its model reads: its tokens (clm, sft), <cls> text <sep>
(mlm, an encoder classifier), text <eos> (a decoder classifier; seq2seq's source,
whose encoder states these are), cut to model.max_length. Rows are padded to a length
bucket (a power of two, at most model.max_length) in batches of eval.batch_size, so
one compiled function serves each bucket. With layers=True every block's output is
captured too (flax's capture_intermediates), the last one before the final norm.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Optional, Sequence

import flax
import jax
import jax.numpy as jnp
import numpy as np

from transformer_jax.data.tasks import classification_data
from transformer_jax.data.tokenizers import special_tokens
from transformer_jax.evaluation.log_likelihood import MIN_BUCKET
from transformer_jax.models.block import TransformerBlock
from transformer_jax.run.task import Task

_BLOCK = re.compile(r"block_(\d+)")


@dataclasses.dataclass(frozen=True)
class HiddenStates:
  """Hidden states of a batch of texts, padded to the longest (zeros beyond a text)."""
  states: np.ndarray  # [B, T, D] the last layer's, after the final norm.
  lengths: np.ndarray  # [B] each row's tokens (special tokens included).
  tokens: np.ndarray  # [B, T] int32, the rows the model read.
  layers: Optional[np.ndarray] = None  # [L, B, T, D] each block's output, when asked.


def _is_block_call(module, method_name: str) -> bool:
  return isinstance(module, TransformerBlock) and method_name == "__call__"


def block_outputs(intermediates) -> list[jax.Array]:
  """The hidden states each TransformerBlock returned, in layer order, from the
  'intermediates' of an apply with capture_intermediates."""
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(intermediates))
  found = []
  for path, value in flat.items():
    blocks = [name for name in path if _BLOCK.fullmatch(str(name))]
    if blocks and path[-1] == "__call__":
      found.append((int(_BLOCK.fullmatch(blocks[-1]).group(1)), value[0].hidden_states))
  return [states for _, states in sorted(found, key=lambda item: item[0])]


def _row_ids(task: Task, text: str) -> list[int]:
  tokenizer, length = task.tokenizer, task.cfg.model.max_length
  ids = [int(t) for t in tokenizer.encode(text)]
  experiment = task.cfg.experiment
  encoder = experiment == "mlm" or (experiment == "classify"
                                    and task.cfg.model.classifier_body == "encoder")
  if encoder:
    return ([tokenizer.token_id(special_tokens.CLS)] + ids[:length - 2]
            + [tokenizer.token_id(special_tokens.SEP)])
  if experiment in ("seq2seq", "classify"):
    return ids[:length - 1] + [tokenizer.token_id(special_tokens.EOS)]
  return ids[:length]


def _apply_fn(task: Task, layers: bool) -> Callable:
  """jit of (params, tokens [B, T], segment_ids [B, T]) -> (states, [per-layer states])."""
  model, _ = task.decoding_model(None)  # Unrolled: one block per layer to capture.
  experiment = task.cfg.experiment
  kwargs = {"capture_intermediates": _is_block_call, "mutable": ["intermediates"]} if layers else {}

  def run(params, tokens, segment_ids):
    if experiment == "seq2seq":
      out = model.apply({"params": params}, tokens, deterministic=True,
                        source_segment_ids=segment_ids, method="encode", **kwargs)
    elif experiment in ("clm", "sft"):
      out = model.apply({"params": params}, tokens, deterministic=True, **kwargs)
    else:
      out = model.apply({"params": params}, tokens, deterministic=True,
                        segment_ids=segment_ids, **kwargs)
    if not layers:
      return out.hidden_states, []
    out, state = out
    return out.hidden_states, block_outputs(state["intermediates"])

  return jax.jit(run)


def hidden_states_fn(task: Task, layers: bool) -> Callable[[Any, Sequence[str]], HiddenStates]:
  """(params, texts) -> HiddenStates, through compiled functions kept by the closure."""
  if task.cfg.experiment == "classify":
    classification_data.rows(task.tokenizer, [""], task.cfg.model.max_length,
                             task.cfg.model.classifier_body == "encoder")  # Special tokens there.
  run = _apply_fn(task, layers)
  batch_size, length = task.cfg.eval.batch_size, task.cfg.model.max_length

  def hidden_states(params, texts: Sequence[str]) -> HiddenStates:
    params = task.decoding_model(params)[1]
    rows = [_row_ids(task, text) for text in texts]
    longest = max([len(row) for row in rows] + [1])
    bucket = MIN_BUCKET
    while bucket < longest:
      bucket *= 2
    bucket = min(bucket, length)
    states, per_layer = [], []
    for start in range(0, len(rows), batch_size):
      chunk = rows[start:start + batch_size]
      tokens = np.zeros((batch_size, bucket), np.int32)
      segments = np.zeros((batch_size, bucket), np.int32)
      for i, row in enumerate(chunk):
        tokens[i, :len(row)], segments[i, :len(row)] = row, 1
      segments[len(chunk):, 0] = 1  # Filler rows: one token, so no row is all padding.
      with task.decoding_mesh():
        last, blocks = run(params, jnp.asarray(tokens), jnp.asarray(segments))
      mask = segments[:len(chunk), :, None]
      states.append(np.asarray(last)[:len(chunk)] * mask)
      if layers:
        per_layer.append(np.stack([np.asarray(b)[:len(chunk)] * mask for b in blocks]))
    lengths = np.asarray([len(row) for row in rows], np.int32)
    tokens = np.zeros((len(rows), bucket), np.int32)
    for i, row in enumerate(rows):
      tokens[i, :len(row)] = row
    width = task.cfg.model.model_dim
    return HiddenStates(
        states=np.concatenate(states) if states else np.zeros((0, bucket, width), np.float32),
        lengths=lengths, tokens=tokens,
        layers=np.concatenate(per_layer, axis=1) if layers and per_layer else None)

  return hidden_states
