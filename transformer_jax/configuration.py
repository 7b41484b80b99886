"""From a locked `ml_collections.ConfigDict` to frozen, validated dataclasses.

Config flows one way: `configs/*.py` build a ConfigDict, absl flags override it,
`validate` checks every field once and returns an `ExperimentConfig`. Modules and
the training loop only ever see the frozen dataclasses. Every problem raises a
`ConfigError` naming the field, before anything is compiled or written.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import re
from typing import Any, Optional

import ml_collections

from transformer_jax.errors import ConfigError


# Every choice a config field offers, defined here once; the modules that act on a
# choice import its set from here.
EXPERIMENTS_PACKAGE = "experiments"  # config.experiment names a module of this package.
DTYPES = ("float32", "bfloat16", "float16")
ATTENTION_SCORES = ("dot", "scaled_dot", "additive")
# fused: jax.nn.dot_product_attention (XLA); cudnn: the same with NVIDIA's cuDNN kernel.
ATTENTION_IMPLEMENTATIONS = ("plain", "fused", "cudnn")
POSITIONS = ("sinusoidal", "learned", "rope", "none")
NORMS = ("layernorm", "rmsnorm")
NORM_POSITIONS = ("pre", "post")
ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "swiglu")
REMATS = ("none", "full", "save_dots")  # Activation recomputation (models/layer_stack.py).
# How a run adapts a base (transformer_jax/adapters): every parameter, the task head only,
# low-rank adapters, prefix key/values or soft-prompt embeddings (the last four need a base).
FINETUNE_METHODS = ("full", "head", "lora", "prefix", "prompt")
DATA_FORMATS = ("text", "jsonl", "tsv", "aligned", "python_stdlib")
INVALID_UTF8_POLICIES = ("fail", "replace")
NORMALIZATIONS = ("none", "NFC", "NFKC")
TOKENIZERS = ("char", "bpe", "wordpiece")
PACKINGS = ("none", "stream", "documents")
DECODE_STRATEGIES = ("greedy", "sample", "beam")
# Named datasets (data.dataset), described in transformer_jax/data/catalog.py; "" reads data.path.
DATASETS = ("wikitext-2", "uci-sentiment")
QUANTIZATIONS = ("none", "int8")
# Roles of special tokens (data.special_token_names: ROLE=TOKEN), as the objectives name them.
SPECIAL_TOKEN_ROLES = ("pad", "bos", "eos", "unk", "mask", "cls", "sep")
HF_PREFIX = "hf:"  # train.init_from=hf:DIR: a Hugging Face model folder.


def attention_problem(score: str, implementation: str, num_heads: int,
                      num_kv_heads: int) -> Optional[tuple[str, str]]:
  """(field, reason) of the first attention option that breaks a rule, else None.

  The validator and `MultiHeadAttention` (built directly, without a config) share it.
  """
  if score not in ATTENTION_SCORES:
    return "model.attention", f"must be one of {ATTENTION_SCORES}, got {score!r}"
  if implementation not in ATTENTION_IMPLEMENTATIONS:
    return ("model.attention_impl",
            f"must be one of {ATTENTION_IMPLEMENTATIONS}, got {implementation!r}")
  if num_kv_heads < 0 or (num_kv_heads and num_heads % num_kv_heads):
    return ("model.num_kv_heads", f"{num_kv_heads} kv heads do not divide "
            f"model.num_heads={num_heads} (0 = one per head)")
  if implementation != "plain" and score == "additive":
    return ("model.attention_impl",
            "fused attention computes dot and scaled_dot scores only, not additive")
  return None


def sampling_problem(temperature: float, top_k: int, top_p: float) -> Optional[tuple[str, str]]:
  """(field, reason) of the first sampling option that breaks a rule, else None.

  Temperature 0 is greedy decoding. Shared by the validator and the samplers.
  """
  if not temperature >= 0:
    return "decode.temperature", f"must be >= 0 (0 is greedy), got {temperature}"
  if top_k < 0:
    return "decode.top_k", f"must be >= 0 (0 keeps every token), got {top_k}"
  if not 0 < top_p <= 1:
    return "decode.top_p", f"must be in (0, 1], got {top_p}"
  return None


def special_token_names(text: str) -> dict[str, str]:
  """'eos=<|endoftext|>, pad=[PAD]' -> {'eos': '<|endoftext|>', 'pad': '[PAD]'}; ValueError
  naming the first malformed entry or unknown role."""
  names = {}
  for entry in text.split(","):
    if not entry.strip():
      continue
    role, separator, token = entry.strip().partition("=")
    if not separator or not token or role not in SPECIAL_TOKEN_ROLES:
      raise ValueError(f"{entry.strip()!r} is not ROLE=TOKEN with ROLE one of "
                       f"{', '.join(SPECIAL_TOKEN_ROLES)}")
    names[role] = token
  return names


def patterns(text: str) -> tuple[str, ...]:
  """'a, b,,c' -> ('a', 'b', 'c'): the comma-separated regexes of a pattern field."""
  return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Transformer shape for every family. `vocab_size` comes from the tokenizer."""
  num_layers: int
  num_heads: int
  model_dim: int
  mlp_dim: int
  max_length: int
  dropout_rate: float
  use_bias: bool
  dtype: str  # Computation dtype; parameters stay float32.
  # The defaults below are GPT-2's (with nanoGPT's exact GELU).
  attention: str = "scaled_dot"  # Score: dot, scaled_dot or additive.
  attention_impl: str = "plain"  # plain or fused (jax.nn.dot_product_attention).
  num_kv_heads: int = 0  # Key/value heads: 0 = num_heads (MHA), 1 = multi-query, else grouped.
  position: str = "learned"  # learned, sinusoidal, rope or none.
  norm: str = "layernorm"  # layernorm or rmsnorm.
  norm_position: str = "pre"  # pre (GPT-2) or post (the original Transformer).
  activation: str = "gelu"  # MLP: gelu (exact erf), gelu_tanh (GPT-2's), relu or swiglu.
  norm_epsilon: float = 1e-5  # LayerNorm/RMSNorm epsilon (BERT: 1e-12).
  # Inference only (eval, sample, translate, attention, export): int8 weight-only matmuls.
  quantize: str = "none"  # none or int8.
  # Other families' fields; the defaults change nothing for a decoder-only model.
  num_encoder_layers: int = 0  # Encoder-decoder: encoder depth; 0 = num_layers.
  num_token_types: int = 0  # Encoder (BERT): segment-embedding rows (A/B); 0 = none.
  embedding_norm: bool = False  # Normalise the summed embeddings (BERT).
  scale_embeddings: bool = False  # Multiply token embeddings by sqrt(model_dim) (Vaswani).
  share_embeddings: bool = True  # Encoder-decoder: source and target share one table.
  # Memory levers (models/layer_stack.py); the defaults change nothing.
  remat: str = "none"  # Recompute block activations in the backward pass: full, save_dots.
  scan_layers: bool = False  # One compiled block scanned over the layers.
  # Experiment classify: the body under the head, encoder (BERT's <cls> pooler) or decoder
  # (GPT's last real token).
  classifier_body: str = "encoder"
  vocab_size: int = 0  # 0 until the tokenizer is known.

  @property
  def head_dim(self) -> int:
    return self.model_dim // self.num_heads


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Where text comes from, how it is cleaned, tokenized and cut into rows."""
  path: str  # A file, a glob or a comma-separated list; ignored for python_stdlib.
  format: str  # text, jsonl, tsv, aligned, python_stdlib.
  text_field: str  # jsonl: the field holding a document's text.
  target_path: str  # aligned: the file of targets, line by line with `path`.
  invalid_utf8: str  # fail (naming file and byte offset) or replace (and count).
  unicode_normalization: str  # none, NFC, NFKC.
  remove_control_characters: bool
  normalize_whitespace: bool
  tokenizer: str  # char, bpe or wordpiece (BERT's; trained or from a Hugging Face folder).
  vocab_size: int  # bpe: the vocabulary to train; char: unused (0).
  tokenizer_path: str  # An existing tokenizer file to load instead of training one.
  # Rows: none (seq2seq: one padded pair a row), stream (clm: one token stream, random
  # windows) or documents (clm: documents, seq2seq: pairs, packed into rows). mlm: unused.
  packing: str
  chunk_overlap: int  # documents: tokens shared by consecutive chunks of a long document.
  validation_fraction: float
  test_fraction: float  # documents: share of documents held out for testing.
  # Masked LM (configs/mlm.py): BERT's recipe.
  mask_probability: float = 0.15  # Share of a row's real tokens the model must predict.
  mask_token_probability: float = 0.8  # ...of which become <mask>,
  random_token_probability: float = 0.1  # ...a random token; the rest stay unchanged.
  next_sentence_probability: float = 0.5  # Segment B really follows A (else a random one).
  # A dataset of the catalog (data/catalog.py), by name: its files are found in data_dir
  # (downloaded there, checksums verified, when missing) and replace data.path and
  # data.format; its own splits replace the hash or tail split. "" reads data.path.
  dataset: str = ""
  data_dir: str = ""  # Where named datasets live; "" = the per-user cache (catalog.py).
  label_field: str = "label"  # Labelled jsonl (classify): the field holding the label.
  target_field: str = ""  # jsonl pairs (seq2seq, sft): the field holding the target.
  # Comma-separated ROLE=TOKEN (roles: pad, bos, eos, unk, mask, cls, sep): the tokenizer's
  # own spelling of a special token, e.g. eos=<|endoftext|>. "" = the project's names
  # (<eos>, ...), else Hugging Face's ([CLS], <|endoftext|>, ...) where the tokenizer has them.
  special_token_names: str = ""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  num_steps: int
  batch_size: int
  learning_rate: float
  end_learning_rate: float
  warmup_steps: int
  decay_steps: int
  adam_beta1: float
  adam_beta2: float
  adam_epsilon: float
  weight_decay: float
  grad_clip_norm: float  # 0 disables clipping.
  seed: int
  log_every_steps: int
  eval_every_steps: int
  checkpoint_every_steps: int
  keep_checkpoints: int
  # Optimizer steps per jitted call (a lax.scan); 1 is one step per call. Only
  # speed changes: batches, keys and updates are the same step by step.
  steps_per_call: int
  label_smoothing: float = 0.0  # Mass spread uniformly over the vocabulary in training targets.
  # Warm start: a workdir (its latest checkpoint), DIR@STEP or hf:DIR (a Hugging Face
  # GPT-2 or BERT folder) whose parameters, only, start a new run (fresh optimizer
  # state, step 0); "" initialises from scratch.
  init_from: str = ""
  # Comma-separated regexes (re.fullmatch over paths such as block_0/mlp/input/kernel):
  # parameters allowed to be unmatched between init_from and this model, beyond those the
  # experiment expects (new task heads, dropped pretraining heads).
  init_unmatched: str = ""
  # Comma-separated regexes (re.fullmatch over parameter paths): the parameters that
  # train; the rest stay frozen and get no optimizer state.
  trainable: str = ".*"
  # Gradient accumulation: each device's rows in this many micro-batches, one step.
  microbatches: int = 1
  # Data parallelism with the gradients summed in one flat all-reduce (shard_map); pure
  # data-parallel meshes only. Faster on CPU devices; dropout then draws per device.
  flat_gradient_all_reduce: bool = False
  # A step whose loss or gradient norm is NaN or infinite changes nothing (it is skipped
  # and counted); this many in a row stop the run.
  max_nonfinite_steps: int = 5

  @property
  def init_from_hf(self) -> Optional[str]:
    """The Hugging Face folder of init_from=hf:DIR, else None."""
    if self.init_from.startswith(HF_PREFIX):
      return self.init_from[len(HF_PREFIX):]
    return None

  @property
  def init_source(self) -> tuple[str, Optional[int]]:
    """init_from as (workdir, step): 'runs/a@300' -> ('runs/a', 300); no step = the latest.
    hf:DIR -> (DIR, None)."""
    if self.init_from_hf is not None:
      return self.init_from_hf, None
    workdir, separator, step = self.init_from.rpartition("@")
    if not separator or not step.isdigit():
      return self.init_from, None
    return workdir, int(step)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  num_batches: int
  batch_size: int
  stride: int  # --mode=eval: >0 scores the whole validation text in windows moved by stride.
  # seq2seq: validation pairs (evenly spaced, at most this many) translated with
  # decode.strategy at every evaluation, scored as eval_validation_bleu; 0 turns it off.
  bleu_pairs: int = 0


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
  strategy: str  # 'greedy', 'sample' or 'beam' (beam: translation and clm sampling).
  prompt: str
  max_new_tokens: int  # seq2seq: the longest translation; 0 = model.max_length.
  temperature: float
  top_k: int  # 0 keeps the whole vocabulary.
  seed: int
  # Defaults, so config files written before these fields keep working.
  top_p: float = 1.0  # Nucleus sampling: 1.0 keeps the whole vocabulary.
  beam_size: int = 4  # strategy=beam: hypotheses kept per sentence.
  length_penalty: float = 0.6  # strategy=beam: GNMT's alpha; 0 ranks by log-probability.


@dataclasses.dataclass(frozen=True)
class MeshConfig:
  """The device mesh data x fsdp x tensor (see `training/partitioning.py`)."""
  data_axis_size: int  # -1: the devices the other axes leave.
  # CPU only: split the host into this many JAX devices (0 keeps JAX's default of one).
  # On a small CPU, one single-threaded device per core, data-parallel, beats one
  # device whose every op is split over all cores (see experiments/README.md).
  num_cpu_devices: int
  fsdp_axis_size: int = 1  # Parameters and optimizer state split over it (ZeRO-3).
  tensor_axis_size: int = 1  # Heads and the MLP width split over it (Megatron).
  # Overrides of partitioning.LOGICAL_AXIS_RULES: 'vocab=tensor,embed=none'.
  axis_rules: str = ""


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
  """How a run adapts a base model (see transformer_jax/adapters); defaults: plain training."""
  method: str = "full"  # One of FINETUNE_METHODS.
  lora_rank: int = 8  # r: A is [in, r], B is [r, out].
  lora_alpha: float = 16.0  # The low-rank update is scaled by alpha / r.
  # Comma-separated regexes (re.fullmatch) over parameter paths: the kernels that get adapters.
  lora_targets: str = ".*attention/(query|value)/kernel"
  lora_dropout: float = 0.0  # On the adapter's input, in training.
  prefix_length: int = 16  # Key/value entries in front of every self-attention.
  # > 0: Li & Liang's reparametrisation while training (an MLP of this width makes the
  # entries from a smaller table); folded into plain entries when exported.
  prefix_hidden: int = 0
  prompt_length: int = 16  # Soft-prompt embeddings in front of the tokens (Lester et al.).
  prompt_init: str = ""  # "": embeddings of randomly drawn vocabulary tokens; else this text's.


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  experiment: str
  model: ModelConfig
  data: DataConfig
  train: TrainConfig
  eval: EvalConfig
  decode: DecodeConfig
  mesh: MeshConfig
  finetune: FinetuneConfig = FinetuneConfig()


_SECTIONS = {
    "model": ModelConfig,
    "data": DataConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "decode": DecodeConfig,
    "mesh": MeshConfig,
    "finetune": FinetuneConfig,
}
_OPTIONAL_SECTIONS = {"finetune"}  # Every field has a default; older config files lack it.
_DERIVED_FIELDS = {("model", "vocab_size")}
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
            if (name, f.name) not in _DERIVED_FIELDS}
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
                   choices: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
  for field, options in choices:
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
  _check_choices(m, "model", (("dtype", DTYPES), ("position", POSITIONS), ("norm", NORMS),
                              ("norm_position", NORM_POSITIONS), ("activation", ACTIVATIONS),
                              ("remat", REMATS)))
  _report(attention_problem(m.attention, m.attention_impl, m.num_heads, m.num_kv_heads))
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
  _check_choices(m, "model", (("quantize", QUANTIZATIONS),))


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


def _check_data(d: DataConfig, max_length: int) -> None:
  _check_choices(d, "data", (("format", DATA_FORMATS), ("tokenizer", TOKENIZERS),
                             ("packing", PACKINGS), ("unicode_normalization", NORMALIZATIONS),
                             ("invalid_utf8", INVALID_UTF8_POLICIES)))
  _require(bool(d.path) or d.format == "python_stdlib" or bool(d.dataset), "data.path",
           "must name a file")
  _require(d.dataset in ("",) + DATASETS, "data.dataset",
           f"must be '' (read data.path) or one of {DATASETS}, got {d.dataset!r}")
  _require(d.format != "aligned" or bool(d.target_path), "data.target_path",
           "must name the target file of an aligned corpus")
  _require(d.tokenizer == "char" or d.vocab_size > 0 or bool(d.tokenizer_path),
           "data.vocab_size", f"must be positive to train a {d.tokenizer} tokenizer")
  _require(d.vocab_size >= 0, "data.vocab_size", "must be >= 0")
  # The exact minimum adds the experiment's special tokens (data/tokenizer.py: make).
  _require(d.tokenizer != "bpe" or bool(d.tokenizer_path) or d.vocab_size > BPE_BYTES,
           "data.vocab_size", f"{d.vocab_size} is too small: a bpe vocabulary holds the "
           f"{BPE_BYTES} bytes plus the experiment's special tokens")
  try:
    special_token_names(d.special_token_names)
  except ValueError as e:
    raise ConfigError("data.special_token_names", str(e)) from None
  _require(0 <= d.chunk_overlap < max_length, "data.chunk_overlap",
           f"must be in [0, model.max_length={max_length})")
  _require(0 < d.validation_fraction < 1, "data.validation_fraction", "must be in (0, 1)")
  _require(0 <= d.test_fraction < 1 - d.validation_fraction, "data.test_fraction",
           "must be >= 0 and leave data for training")
  for field in ("mask_probability", "mask_token_probability", "random_token_probability",
                "next_sentence_probability"):
    _require(0 <= getattr(d, field) <= 1, f"data.{field}", "must be in [0, 1]")
  _require(d.mask_token_probability + d.random_token_probability <= 1,
           "data.random_token_probability",
           "data.mask_token_probability + data.random_token_probability must be <= 1")


def _check_rest(cfg: ExperimentConfig) -> None:
  e, s = cfg.eval, cfg.decode
  _check_data(cfg.data, cfg.model.max_length)
  _require(0 <= e.stride <= cfg.model.max_length, "eval.stride",
           f"must be in [0, model.max_length={cfg.model.max_length}]")
  _require(e.num_batches > 0, "eval.num_batches", "must be positive")
  _require(e.batch_size > 0, "eval.batch_size", "must be positive")
  _require(e.bleu_pairs >= 0, "eval.bleu_pairs", f"must be >= 0, got {e.bleu_pairs}")
  _check_choices(s, "decode", (("strategy", DECODE_STRATEGIES),))
  _require(s.max_new_tokens >= 0, "decode.max_new_tokens", "must be >= 0")
  _report(sampling_problem(s.temperature, s.top_k, s.top_p))
  _require(s.beam_size >= 1, "decode.beam_size", f"must be >= 1, got {s.beam_size}")
  _require(s.length_penalty >= 0, "decode.length_penalty",
           f"must be >= 0, got {s.length_penalty}")
  _require(bool(s.prompt), "decode.prompt", "must not be empty")
  _require(0 <= s.seed < SEED_LIMIT, "decode.seed", f"must be in [0, {SEED_LIMIT})")
  _require(cfg.mesh.num_cpu_devices >= 0, "mesh.num_cpu_devices", "must be >= 0")
  sizes = {f"mesh.{axis}_axis_size": getattr(cfg.mesh, f"{axis}_axis_size")
           for axis in ("data", "fsdp", "tensor")}
  for field, size in sizes.items():
    _require(size == -1 or size > 0, field, f"must be -1 (the devices left) or positive, "
             f"got {size}")
  _require(list(sizes.values()).count(-1) <= 1, "mesh.data_axis_size",
           "at most one mesh axis may be -1 (the devices the others leave)")


def _check_finetune(f: FinetuneConfig, t: TrainConfig, m: ModelConfig) -> None:
  _check_choices(f, "finetune", (("method", FINETUNE_METHODS),))
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


def experiment_module(name: str):
  """The module `experiments.<name>` that config.experiment names; ConfigError if none.

  It provides `run(cfg, workdir, mode, inputs)` and `validate(cfg)`, which checks
  the fields only that experiment reads or restricts (so adding an experiment
  touches no generic module).
  """
  if not re.fullmatch(r"[a-z][a-z0-9_]*", str(name)):
    raise ConfigError("experiment", f"must name a module of {EXPERIMENTS_PACKAGE}/, "
                      f"got {name!r}")
  module_name = f"{EXPERIMENTS_PACKAGE}.{name}"
  try:
    return importlib.import_module(module_name)
  except ModuleNotFoundError as e:
    if e.name != module_name:
      raise
    raise ConfigError("experiment", f"no experiment {name!r} "
                      f"({EXPERIMENTS_PACKAGE}/{name}.py does not exist)") from None


def validate(config: ml_collections.ConfigDict) -> ExperimentConfig:
  """Validates a ConfigDict once and freezes it. Raises ConfigError.

  The generic checks run first, then the experiment's own `validate`.
  """
  given = dict(config.items())
  known = set(_SECTIONS) | {"experiment"}
  for key in given:
    if key not in known:
      raise ConfigError(key, "unknown section")
  experiment = experiment_module(given.get("experiment"))
  sections = {}
  for name, cls in _SECTIONS.items():
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
  experiment.validate(cfg)
  return cfg


def to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
  """JSON-ready view of a validated config, for the workdir and checkpoints."""
  return dataclasses.asdict(cfg)
