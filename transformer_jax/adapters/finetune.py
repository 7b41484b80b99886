"""What `finetune.method` means for a run: the model, what trains, what a warm start adds,
what a checkpoint stores, and how a soft prompt starts.

  full    every parameter trains (train.trainable may narrow it); a plain checkpoint.
  head    only the task head trains (a linear probe); a plain checkpoint.
  lora, prefix, prompt
          the base is frozen; the adapter and the task head (if any) train, and only they
          are checkpointed, with the base's fingerprint: loading needs the same base
          (train.init_from) and refuses another.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from transformer_jax.adapters import adapted, lora
from transformer_jax.config_sections import FinetuneConfig, TrainConfig
from transformer_jax.errors import ConfigError
from transformer_jax import parameter_paths

# The parameter paths each adapter method adds (and trains).
ADAPTER_PATTERNS = {"lora": (f"{lora.NAME}/.*",),
                    "prefix": (f"{adapted.PREFIX}(_table|_in|_out)?(/.*)?",),
                    "prompt": (adapted.PROMPT,)}


def wrap(model: nn.Module, f: FinetuneConfig, example_args: tuple) -> nn.Module:
  """The model the run trains: `model` itself for full and head, else adapted."""
  if f.method not in adapted.ADAPTER_METHODS:
    return model
  shapes = ()
  if f.method == "lora":
    targets = tuple(p.strip() for p in f.lora_targets.split(",") if p.strip())
    shapes = lora.target_shapes(model, example_args, {"deterministic": True}, targets)
    if not shapes:
      raise ConfigError("finetune.lora_targets", f"{f.lora_targets!r} matches no kernel of "
                        "the model (paths look like block_0/attention/query/kernel)")
  return adapted.Adapted(base=model, method=f.method, lora_shapes=shapes, lora_rank=f.lora_rank,
                         lora_alpha=f.lora_alpha, lora_dropout=f.lora_dropout,
                         prefix_length=f.prefix_length, prefix_hidden=f.prefix_hidden,
                         prompt_length=f.prompt_length)


def train_config(f: FinetuneConfig, t: TrainConfig, head_patterns: tuple[str, ...]) -> TrainConfig:
  """train.trainable as the method says: the head, or the adapter plus the head."""
  if f.method == "full":
    return t
  if f.method == "head" and not head_patterns:
    raise ConfigError("finetune.method", "head trains a task head, and this experiment has "
                      "none; use full, lora, prefix or prompt")
  patterns = head_patterns + ADAPTER_PATTERNS.get(f.method, ())
  return dataclasses.replace(t, trainable=",".join(patterns))


def new_patterns(f: FinetuneConfig) -> tuple[str, ...]:
  """Paths a warm start does not find in the base: the adapter's."""
  return ADAPTER_PATTERNS.get(f.method, ())


def stores_adapters_only(f: FinetuneConfig, t: TrainConfig) -> bool:
  """An adapter run on a base stores its adapter alone; an exported (standalone) one, whose
  checkpoint holds the base's weights too, names no base."""
  return f.method in adapted.ADAPTER_METHODS and bool(t.init_from)


def fingerprint(params: Any) -> str:
  """sha256 over every parameter's path, dtype, shape and bytes: which base this is."""
  digest = hashlib.sha256()
  for path, value in sorted(parameter_paths.flat(jax.device_get(params)).items()):
    value = np.asarray(value)
    digest.update(f"{path}:{value.dtype}:{value.shape}".encode())
    digest.update(value.tobytes())
  return digest.hexdigest()


def initial_prompt(params: Any, f: FinetuneConfig, tokenizer, seed: int) -> Any:
  """A soft prompt's starting value (Lester et al.): the base's embeddings of `prompt_init`'s
  tokens (repeated to prompt_length), or of prompt_length vocabulary tokens drawn with
  `seed` (special tokens left out)."""
  table = params["token_embedding"]["embedding"] if "token_embedding" in params else None
  if table is None:
    raise ConfigError("finetune.method", "prompt tuning needs a model with a token table")
  if f.prompt_init:
    ids = np.asarray(tokenizer.encode(f.prompt_init))
    if ids.size == 0:
      raise ConfigError("finetune.prompt_init", "encodes to no token")
    ids = np.resize(ids, f.prompt_length)
  else:
    special = {tokenizer.token_id(t) for t in getattr(tokenizer, "special_tokens", ())}
    candidates = np.array([i for i in range(tokenizer.vocab_size) if i not in special])
    ids = np.random.default_rng(seed).choice(candidates, f.prompt_length, replace=False)
  return {**params, adapted.PROMPT: jax.numpy.asarray(table)[ids]}
