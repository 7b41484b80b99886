"""Every choice a config field offers, and the rules that modules built without a config share.

Each set of choices is written here once: the validator (`configuration.py`) checks
fields against it, and the modules that act on a choice import the same set.
"""

from __future__ import annotations

from typing import Optional


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
# clm on a parallel corpus: one `source<TAB>target` document per pair, or each side its own.
PAIR_DOCUMENTS = ("joined", "sides")
DECODE_STRATEGIES = ("greedy", "sample", "beam")
# Named datasets (data.dataset) and their kinds (text: running text in train/validation/test
# files; labelled: labelled sentences), described in transformer_jax/data/corpora/catalog.py;
# "" reads data.path.
TEXT_DATASET, LABELLED_DATASET = "text", "labelled"
DATASET_KINDS = {"wikitext-2": TEXT_DATASET, "uci-sentiment": LABELLED_DATASET}
DATASETS = tuple(DATASET_KINDS)
# The experiments (config.experiment), each a module of transformer_jax/tasks/.
EXPERIMENTS = ("clm", "mlm", "seq2seq", "classify", "sft")
# Experiment classify: the body under the head (BERT's <cls> pooler, GPT's last token).
CLASSIFIER_BODIES = ("encoder", "decoder")
# What the head reads: the body's own token (<cls>, or the last real one) or the mean of
# every real token's hidden state.
CLASSIFIER_POOLINGS = ("token", "mean")
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
