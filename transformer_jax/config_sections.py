"""The frozen dataclasses a validated config becomes, one per section.

`configuration.validate` builds them from a ConfigDict; modules and the training loop
only ever see these. Field defaults let config files that predate a field keep working.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from transformer_jax.config_choices import HF_PREFIX


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
  # What the head reads: token (<cls> or the last real token) or mean (of real tokens).
  classifier_pooling: str = "token"
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
  # A dataset of the catalog (data/corpora/catalog.py), by name: its files are found in data_dir
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
  # A dataset's own validation and test files (same format as data.path): when set, each
  # replaces that split of data.path (hash or tail split), and data.path trains (less the
  # other held-out split, when its file is not given). "" splits data.path.
  validation_path: str = ""
  test_path: str = ""
  # classify: a low-resource training set (data/tasks/stratified_subsets.py): this many
  # examples of the training split, stratified by label, fixed by subset_seed (not
  # train.seed) and contained in every larger subset of the same seed. 0: the whole split.
  train_examples: int = 0
  subset_seed: int = 0
  # clm on a parallel corpus: joined (a pair is one `source<TAB>target` document, split
  # by line) or sides (each distinct side of a pair is a document; the pairs are split by
  # source text as seq2seq and sft split them, so a base never reads their held-out pairs).
  pair_documents: str = "joined"


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
  # sft: this many training pairs (drawn by decode.seed) written before every prompt
  # completed for BLEU (train and eval modes): few-shot prompting, `decoding/few_shot.py`.
  few_shot_examples: int = 0


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
