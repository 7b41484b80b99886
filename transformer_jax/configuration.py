"""From a locked `ml_collections.ConfigDict` to frozen, validated dataclasses.

Config flows one way: `configs/*.py` build a ConfigDict, absl flags override it,
`validate` checks every field once and returns an `ExperimentConfig`. Modules and
the training loop only ever see the frozen dataclasses. Every problem raises a
`ConfigError` naming the field, before anything is compiled or written.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Optional

import ml_collections

from transformer_jax import config_choices as choices
from transformer_jax import experiment_rules
from transformer_jax.config_choices import patterns
from transformer_jax.config_sections import (DataConfig, DecodeConfig, EvalConfig,
                                              ExperimentConfig, FinetuneConfig, MeshConfig,
                                              ModelConfig, TrainConfig)
from transformer_jax.errors import ConfigError


SECTIONS = {
    "model": ModelConfig,
    "data": DataConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "decode": DecodeConfig,
    "mesh": MeshConfig,
    "finetune": FinetuneConfig,
}
_OPTIONAL_SECTIONS = {"finetune"}  # Every field has a default; older config files lack it.
DERIVED_FIELDS = {("model", "vocab_size")}
BPE_BYTES = 256  # A byte-level BPE vocabulary holds every byte (bpe_tokenizer.BYTES).
INT64_LIMIT = 2**63
SEED_LIMIT = 2**31  # Seeds feed jax.random.key(seed + 1) and numpy's generators.
STEP_LIMIT = 2**31  # The step counter is int32.


def _show(value: Any) -> str:
  """A value for a one-line message: repr, shortened (an int of 10**5000 has no repr)."""
  if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
    return f"an integer of {value.bit_length()} bits"
  try:
    text = repr(value)
  except ValueError:  # Holds an int too long for str().
    return f"a {type(value).__name__}"
  return text if len(text) <= 60 else text[:60] + "..."


def _convert(name: str, value: Any, annotation: Any) -> Any:
  """Checks one value against its dataclass annotation (ints widen to floats).

  Numbers must be finite and ints within int64: no field means anything beyond, and
  every later message and computation can trust them.
  """
  kind = {"int": int, "float": float, "str": str, "bool": bool}[annotation]
  is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
  if kind in (int, float) and is_number and isinstance(value, int) and not (
      -INT64_LIMIT <= value < INT64_LIMIT):
    raise ConfigError(name, f"{_show(value)} is out of range")
  if kind is float and is_number:
    value = float(value)
    if not math.isfinite(value):
      raise ConfigError(name, f"must be finite, got {value}")
    return value
  if kind is int and isinstance(value, bool) or not isinstance(value, kind):
    raise ConfigError(name, f"expected {kind.__name__}, got {_show(value)}")
  return value


def _section(name: str, cls: type, values: ml_collections.ConfigDict) -> Any:
  fields = {f.name: f for f in dataclasses.fields(cls)
            if (name, f.name) not in DERIVED_FIELDS}
  given = dict(values.items())
  for key in given:
    if key not in fields:
      raise ConfigError(f"{name}.{key}", "unknown field")
  kwargs = {}
  for key, field in fields.items():
    if key not in given:
      if field.default is not dataclasses.MISSING:
        continue  # A field another family uses; a config file lists what it sets.
      raise ConfigError(f"{name}.{key}", "missing field")
    kwargs[key] = _convert(f"{name}.{key}", given[key], field.type)
  return cls(**kwargs)


def _require(condition: bool, field: str, message: str) -> None:
  if not condition:
    raise ConfigError(field, message)


def _report(problem: Optional[tuple[str, str]]) -> None:
  if problem is not None:
    raise ConfigError(*problem)


def _check_choices(section: Any, prefix: str,
                   fields: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
  for field, options in fields:
    _require(getattr(section, field) in options, f"{prefix}.{field}",
             f"must be one of {options}, got {getattr(section, field)!r}")


def _check_patterns(field: str, text: str) -> None:
  for pattern in patterns(text):
    try:
      re.compile(pattern)
    except re.error as e:
      raise ConfigError(field, f"{pattern!r} is not a regular expression: {e}") from None


def _check_model(m: ModelConfig) -> None:
  for field in ("num_layers", "num_heads", "model_dim", "mlp_dim", "max_length"):
    _require(getattr(m, field) > 0, f"model.{field}", "must be positive")
  _require(m.model_dim % m.num_heads == 0, "model.num_heads",
           f"{m.num_heads} heads do not divide model.model_dim={m.model_dim}")
  _require(0.0 <= m.dropout_rate < 1.0, "model.dropout_rate", "must be in [0, 1)")
  _check_choices(m, "model", (("dtype", choices.DTYPES), ("position", choices.POSITIONS),
                              ("norm", choices.NORMS), ("norm_position", choices.NORM_POSITIONS),
                              ("activation", choices.ACTIVATIONS), ("remat", choices.REMATS)))
  _report(choices.attention_problem(m.attention, m.attention_impl, m.num_heads,
                                    m.num_kv_heads))
  _require(m.position != "rope" or m.head_dim % 2 == 0, "model.position",
           f"rope needs an even head dimension, got {m.head_dim}")
  _require(m.position != "sinusoidal" or m.model_dim % 2 == 0, "model.position",
           f"sinusoidal positions need an even model.model_dim, got {m.model_dim}")
  _require(m.attention_impl == "plain" or m.dropout_rate == 0, "model.attention_impl",
           "fused attention applies no attention dropout; set model.dropout_rate=0")
  _require(m.attention_impl != "cudnn" or m.dtype in ("bfloat16", "float16"),
           "model.attention_impl", f"cudnn attention computes in bfloat16 or float16, not "
           f"model.dtype={m.dtype!r}")
  _require(m.num_encoder_layers >= 0, "model.num_encoder_layers", "must be >= 0")
  _require(m.num_token_types >= 0, "model.num_token_types", "must be >= 0")
  _require(m.norm_epsilon > 0, "model.norm_epsilon", f"must be positive, got {m.norm_epsilon}")
  _check_choices(m, "model", (("quantize", choices.QUANTIZATIONS),))


def _check_train(t: TrainConfig) -> None:
  for field in ("num_steps", "batch_size", "log_every_steps", "eval_every_steps",
                "checkpoint_every_steps", "keep_checkpoints", "steps_per_call"):
    _require(getattr(t, field) > 0, f"train.{field}", "must be positive")
  _require(t.learning_rate > 0, "train.learning_rate", "must be positive")
  _require(0 <= t.end_learning_rate <= t.learning_rate, "train.end_learning_rate",
           "must be in [0, train.learning_rate]")
  _require(t.warmup_steps >= 0, "train.warmup_steps", "must be >= 0")
  _require(t.decay_steps > t.warmup_steps, "train.decay_steps",
           "must exceed train.warmup_steps")
  for field in ("adam_beta1", "adam_beta2"):
    _require(0 <= getattr(t, field) < 1, f"train.{field}", "must be in [0, 1)")
  _require(t.adam_epsilon > 0, "train.adam_epsilon", "must be positive")
  _require(t.weight_decay >= 0, "train.weight_decay", "must be >= 0")
  _require(t.grad_clip_norm >= 0, "train.grad_clip_norm", "must be >= 0")
  _require(0 <= t.label_smoothing < 1, "train.label_smoothing", "must be in [0, 1)")
  workdir, _ = t.init_source
  _require(not t.init_from or bool(workdir), "train.init_from",
           f"must name a workdir (DIR, DIR@STEP or hf:DIR), got {t.init_from!r}")
  _check_patterns("train.init_unmatched", t.init_unmatched)
  _require(t.microbatches > 0, "train.microbatches", f"must be positive, got {t.microbatches}")
  _require(bool(patterns(t.trainable)), "train.trainable",
           "must hold at least one regular expression ('.*' trains everything)")
  _check_patterns("train.trainable", t.trainable)
  _require(t.max_nonfinite_steps >= 1, "train.max_nonfinite_steps", "must be >= 1")
  _require(t.num_steps < STEP_LIMIT, "train.num_steps", f"must be below {STEP_LIMIT}")
  _require(0 <= t.seed < SEED_LIMIT, "train.seed", f"must be in [0, {SEED_LIMIT})")


def _check_data(d: DataConfig, max_length: int, init_from: str) -> None:
  """init_from: train.init_from, whose weights bring their own tokenizer."""
  _check_choices(d, "data", (("format", choices.DATA_FORMATS),
                             ("tokenizer", choices.TOKENIZERS), ("packing", choices.PACKINGS),
                             ("pair_documents", choices.PAIR_DOCUMENTS),
                             ("unicode_normalization", choices.NORMALIZATIONS),
                             ("invalid_utf8", choices.INVALID_UTF8_POLICIES)))
  _require(d.dataset in ("",) + choices.DATASETS, "data.dataset",
           f"must be '' (read data.path) or one of {choices.DATASETS}, got {d.dataset!r}")
  _require(d.format != "aligned" or bool(d.target_path), "data.target_path",
           "must name the target file of an aligned corpus")
  for field in ("validation_path", "test_path"):
    if getattr(d, field):
      _require(not d.dataset, f"data.{field}", f"a named dataset ({d.dataset}) brings its own "
               "splits; set it to ''")
      _require(d.format not in ("aligned", "python_stdlib"), f"data.{field}",
               f"is for data.format text, jsonl or tsv, not {d.format!r}")
  brought = bool(d.tokenizer_path) or bool(init_from)  # An existing tokenizer, not trained.
  _require(d.tokenizer == "char" or d.vocab_size > 0 or brought,
           "data.vocab_size", f"must be positive to train a {d.tokenizer} tokenizer")
  _require(d.vocab_size >= 0, "data.vocab_size", "must be >= 0")
  # The exact minimum adds the experiment's special tokens (data/tokenizers/tokenizer.py: make).
  _require(d.tokenizer != "bpe" or brought or d.vocab_size > BPE_BYTES,
           "data.vocab_size", f"{d.vocab_size} is too small: a bpe vocabulary holds the "
           f"{BPE_BYTES} bytes plus the experiment's special tokens")
  try:
    choices.special_token_names(d.special_token_names)
  except ValueError as e:
    raise ConfigError("data.special_token_names", str(e)) from None
  _require(0 <= d.chunk_overlap < max_length, "data.chunk_overlap",
           f"must be in [0, model.max_length={max_length})")
  _require(d.train_examples >= 0, "data.train_examples", "must be >= 0 (0: every example)")
  _require(0 <= d.subset_seed < SEED_LIMIT, "data.subset_seed", f"must be in [0, {SEED_LIMIT})")
  _require(0 < d.validation_fraction < 1, "data.validation_fraction", "must be in (0, 1)")
  _require(0 <= d.test_fraction < 1 - d.validation_fraction, "data.test_fraction",
           "must be >= 0 and leave data for training")
  for field in ("mask_probability", "mask_token_probability", "random_token_probability",
                "next_sentence_probability"):
    _require(0 <= getattr(d, field) <= 1, f"data.{field}", "must be in [0, 1]")
  _require(d.mask_token_probability + d.random_token_probability <= 1,
           "data.random_token_probability",
           "data.mask_token_probability + data.random_token_probability must be <= 1")


def _check_decode(s: DecodeConfig) -> None:
  _check_choices(s, "decode", (("strategy", choices.DECODE_STRATEGIES),))
  _require(s.max_new_tokens >= 0, "decode.max_new_tokens", "must be >= 0")
  _report(choices.sampling_problem(s.temperature, s.top_k, s.top_p))
  _require(s.beam_size >= 1, "decode.beam_size", f"must be >= 1, got {s.beam_size}")
  _require(s.length_penalty >= 0, "decode.length_penalty",
           f"must be >= 0, got {s.length_penalty}")
  _require(bool(s.prompt), "decode.prompt", "must not be empty")
  _require(0 <= s.seed < SEED_LIMIT, "decode.seed", f"must be in [0, {SEED_LIMIT})")


def _check_rest(cfg: ExperimentConfig) -> None:
  e, s = cfg.eval, cfg.decode
  _check_data(cfg.data, cfg.model.max_length, cfg.train.init_from)
  _require(0 <= e.stride <= cfg.model.max_length, "eval.stride",
           f"must be in [0, model.max_length={cfg.model.max_length}]")
  _require(e.num_batches > 0, "eval.num_batches", "must be positive")
  _require(e.batch_size > 0, "eval.batch_size", "must be positive")
  _require(e.bleu_pairs >= 0, "eval.bleu_pairs", f"must be >= 0, got {e.bleu_pairs}")
  _require(e.few_shot_examples >= 0, "eval.few_shot_examples",
           f"must be >= 0, got {e.few_shot_examples}")
  _check_decode(s)
  _require(cfg.mesh.num_cpu_devices >= 0, "mesh.num_cpu_devices", "must be >= 0")
  sizes = {f"mesh.{axis}_axis_size": getattr(cfg.mesh, f"{axis}_axis_size")
           for axis in ("data", "fsdp", "tensor")}
  for field, size in sizes.items():
    _require(size == -1 or size > 0, field, f"must be -1 (the devices left) or positive, "
             f"got {size}")
  _require(list(sizes.values()).count(-1) <= 1, "mesh.data_axis_size",
           "at most one mesh axis may be -1 (the devices the others leave)")


def _check_finetune(f: FinetuneConfig, t: TrainConfig, m: ModelConfig) -> None:
  _check_choices(f, "finetune", (("method", choices.FINETUNE_METHODS),))
  _require(f.method in ("full", "head") or not m.scan_layers, "model.scan_layers",
           f"finetune.method={f.method} adapts each layer apart; use the unrolled layout")
  _require(f.method == "full" or t.trainable == ".*", "train.trainable",
           f"finetune.method={f.method} chooses what trains; leave train.trainable at '.*'")
  for field in ("lora_rank", "prefix_length", "prompt_length"):
    _require(getattr(f, field) > 0, f"finetune.{field}", "must be positive")
  _require(f.lora_alpha > 0, "finetune.lora_alpha", "must be positive")
  _require(0 <= f.lora_dropout < 1, "finetune.lora_dropout", "must be in [0, 1)")
  _require(f.prefix_hidden >= 0, "finetune.prefix_hidden", "must be >= 0")
  _require(bool(patterns(f.lora_targets)), "finetune.lora_targets", "must name a kernel")
  _check_patterns("finetune.lora_targets", f.lora_targets)


def validate(config: ml_collections.ConfigDict) -> ExperimentConfig:
  """Validates a ConfigDict once and freezes it. Raises ConfigError.

  The generic checks run first, then the experiment's own rules (`experiment_rules`).
  """
  given = dict(config.items())
  known = set(SECTIONS) | {"experiment"}
  for key in given:
    if key not in known:
      raise ConfigError(key, "unknown section")
  _require(given.get("experiment") in choices.EXPERIMENTS, "experiment",
           f"must be one of {choices.EXPERIMENTS}, got {_show(given.get('experiment'))}")
  sections = {}
  for name, cls in SECTIONS.items():
    if name not in given and name in _OPTIONAL_SECTIONS:
      sections[name] = cls()
      continue
    if name not in given:
      raise ConfigError(name, "missing section")
    sections[name] = _section(name, cls, given[name])
  cfg = ExperimentConfig(experiment=given["experiment"], **sections)
  _check_model(cfg.model)
  _check_train(cfg.train)
  _check_rest(cfg)
  _check_finetune(cfg.finetune, cfg.train, cfg.model)
  experiment_rules.check(cfg)
  return cfg


def replace_decode(cfg: ExperimentConfig, values: dict[str, Any]) -> ExperimentConfig:
  """A validated config with decode.* fields replaced ({'temperature': 0.7}), each checked
  as `validate` checks it (for decoding settings given in Python, e.g. `generate`)."""
  fields = {f.name: f for f in dataclasses.fields(DecodeConfig)}
  converted = {}
  for name, value in values.items():
    if name not in fields:
      raise ConfigError(f"decode.{name}", "unknown field")
    converted[name] = _convert(f"decode.{name}", value, fields[name].type)
  cfg = dataclasses.replace(cfg, decode=dataclasses.replace(cfg.decode, **converted))
  _check_decode(cfg.decode)
  experiment_rules.check(cfg)
  return cfg


def to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
  """JSON-ready view of a validated config, for the workdir and checkpoints."""
  return dataclasses.asdict(cfg)
