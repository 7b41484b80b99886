"""Supervised fine-tuning data: prompt/completion pairs as rows whose loss is the completion's.

A pair becomes the token sequence `prompt <eos> completion <eos>` (the template is made
of token ids, never of strings): the model reads it left to right as a causal LM, and
the targets that count (weight 1) are those predicting the completion's tokens and
its closing <eos>; the prompt's own tokens and the separator carry weight 0, so a
prompt token's target changes nothing. Pairs are packed several to a row (segment ids
and positions per pair, as for packed documents), in an order drawn from train.seed;
a training pair longer than model.max_length is dropped. Pairs come from a parallel
corpus (tsv: prompt, completion; aligned files; jsonl with data.text_field and
data.target_field) and are split by their prompt, as for translation.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Optional, Sequence

import jax
import numpy as np
from absl import logging

from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data.corpora import sources
from transformer_jax.data.batches import row_batches
from transformer_jax.data.tokenizers import special_tokens
from transformer_jax.data.tasks import translation_data
from transformer_jax.data.tokenizers import tokenizer as tokenizer_lib
from transformer_jax.data.tokenizers.tokenizer import Tokenizer
from transformer_jax.errors import DataError

SFT_SPECIAL_TOKENS = (special_tokens.PAD, special_tokens.EOS)


@dataclasses.dataclass
class SftData:
  tokenizer: Tokenizer
  train_batch_at: Callable[[int], dict]
  eval_batches: Callable[[], Iterable[dict]]  # Validation rows: the completion loss.
  validation_pairs: list[tuple[str, str]]  # (prompt, completion) texts, e.g. for BLEU.
  test_pairs: list[tuple[str, str]]
  # eval.few_shot_examples training pairs, written before every prompt completed.
  few_shot_pairs: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def example(prompt: np.ndarray, completion: np.ndarray, eos: int) -> tuple[np.ndarray, ...]:
  """(inputs, targets, weights) of one pair: prompt <eos> completion <eos>, shifted."""
  tokens = np.concatenate([prompt, [eos], completion, [eos]]).astype(np.int32)
  weights = np.zeros(len(tokens) - 1, np.float32)
  weights[len(prompt):] = 1.0  # Targets from the first completion token on.
  return tokens[:-1], tokens[1:], weights


def pack(examples: Sequence[tuple[np.ndarray, ...]], length: int, pad: int) -> dict:
  """Greedily packs (inputs, targets, weights) into rows of `length`: segment ids 1, 2, ...
  per example and positions from 0 in each; an example longer than a row is dropped."""
  rows, current, used = [], [], 0
  for ex in examples:
    if len(ex[0]) > length:
      continue
    if used + len(ex[0]) > length:
      rows.append(current)
      current, used = [], 0
    current.append(ex)
    used += len(ex[0])
  if current:
    rows.append(current)
  out = {"inputs": np.full((len(rows), length), pad, np.int32),
         "targets": np.full((len(rows), length), pad, np.int32),
         "weights": np.zeros((len(rows), length), np.float32),
         "segment_ids": np.zeros((len(rows), length), np.int32),
         "positions": np.zeros((len(rows), length), np.int32)}
  for r, row in enumerate(rows):
    start = 0
    for segment, (inputs, targets, weights) in enumerate(row, start=1):
      span = slice(start, start + len(inputs))
      out["inputs"][r, span], out["targets"][r, span] = inputs, targets
      out["weights"][r, span], out["segment_ids"][r, span] = weights, segment
      out["positions"][r, span] = np.arange(len(inputs))
      start += len(inputs)
  return out


def choose_shots(pairs: Sequence[tuple[str, str]], count: int,
                 seed: int) -> list[tuple[str, str]]:
  """Few-shot examples: `count` pairs drawn without replacement by `seed`, in the drawn
  order (all of them, shuffled, if fewer)."""
  order = np.random.default_rng(seed).permutation(len(pairs))[:count]
  return [pairs[i] for i in order]


def encode(tokenizer: Tokenizer, pairs: Sequence[tuple[str, str]]) -> list[tuple[np.ndarray, ...]]:
  eos = tokenizer.token_id(special_tokens.EOS)
  prompts = tokenizer_lib.encode_all(tokenizer, [p for p, _ in pairs])
  completions = tokenizer_lib.encode_all(tokenizer, [c for _, c in pairs])
  return [example(p, c, eos) for p, c in zip(prompts, completions)]


def build(cfg: ExperimentConfig, existing: Optional[tokenizer_lib.Existing]) -> SftData:
  d, t, e, length = cfg.data, cfg.train, cfg.eval, cfg.model.max_length
  parts = translation_data.read_splits(d, t.seed, cfg.experiment)
  pairs = [pair for split in sources.SPLITS for pair in parts[split]]
  texts = {split: [(p.text, p.target) for p in members] for split, members in parts.items()}
  vocabulary = texts["train"] if d.tokenizer != "char" else [(p.text, p.target) for p in pairs]
  tokenizer = tokenizer_lib.make(cfg.data, existing, [x for pair in vocabulary for x in pair],
                                 SFT_SPECIAL_TOKENS)
  missing = [s for s in SFT_SPECIAL_TOKENS if s not in getattr(tokenizer, "special_tokens", ())]
  if missing:
    raise DataError(f"the tokenizer lacks {', '.join(missing)}, which sft needs")
  pad = tokenizer.token_id(special_tokens.PAD)
  train = encode(tokenizer, texts["train"])
  order = np.random.default_rng(t.seed).permutation(len(train))
  train_rows = pack([train[i] for i in order], length, pad)
  validation_rows = pack(encode(tokenizer, texts["validation"]), length, pad)
  kept = sum(len(x[0]) <= length for x in train)
  logging.info("sft: %d training pairs (%d longer than %d tokens dropped) in %d rows; %d "
               "validation, %d test pairs", kept, len(train) - kept, length,
               len(train_rows["inputs"]), len(texts["validation"]), len(texts["test"]))
  if len(train_rows["inputs"]) < t.batch_size:
    raise DataError(f"the training pairs pack into {len(train_rows['inputs'])} rows, fewer "
                    f"than train.batch_size={t.batch_size}")
  eval_rows = {k: v[:e.num_batches * e.batch_size] for k, v in validation_rows.items()}
  eval_list = row_batches.batches_of_rows(eval_rows, e.batch_size)
  return SftData(
      tokenizer=tokenizer,
      train_batch_at=lambda step: row_batches.rows_batch_at(
          train_rows, t.seed, step, t.batch_size, jax.process_index(), jax.process_count()),
      eval_batches=lambda: iter(eval_list), validation_pairs=texts["validation"],
      test_pairs=texts["test"],
      few_shot_pairs=choose_shots(texts["train"], e.few_shot_examples,
                                  cfg.decode.seed))
