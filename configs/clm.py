"""Causal language modelling with a GPT-style decoder on character-level Tiny Shakespeare.

Presets (`--config=configs/clm.py:<preset>`):
  (none)       the README's main job: ~10 minutes on a 2-core CPU, validation loss <= 1.70.
  baby         nanoGPT's CPU command for shakespeare_char (nanoGPT: val loss 1.8857 at 2000).
  shakespeare  nanoGPT's GPU config train_shakespeare_char.py (nanoGPT: best val 1.4697, A100).
  code         a byte-level BPE GPT on the Python standard library's own modules, packed
               documents; validation on held-out modules. Try --mode=sample.
  gpt2         GPT-2 small's published shape (124,439,808 parameters with a 50,257-token
               BPE): far too big for a CPU; for GPUs/TPUs and imported weights.
  wikitext     a byte-level BPE GPT on WikiText-2 (data.dataset=wikitext-2): trained on
               its train file, validated on valid; `--mode=eval` reports word-level
               perplexity on valid and test (eval_word_perplexity, test_word_perplexity).
  tiny         a few seconds, for tests.

`base()` holds every section; configs/mlm.py and configs/seq2seq.py start from it.
"""

import os

import ml_collections

_SHIPPED_TEXT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), os.pardir, "experiments", "data",
    "tinyshakespeare.txt.gz")
PRESETS = ("default", "baby", "shakespeare", "code", "gpt2", "tiny", "wikitext")


def base() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.experiment = "clm"

  config.model = ml_collections.ConfigDict()
  config.model.num_layers = 4
  config.model.num_heads = 4
  config.model.model_dim = 128
  config.model.mlp_dim = 4 * 128
  config.model.max_length = 64
  config.model.dropout_rate = 0.0
  config.model.use_bias = False
  config.model.attention = "scaled_dot"
  config.model.attention_impl = "plain"
  config.model.num_kv_heads = 0
  config.model.position = "learned"
  config.model.norm = "layernorm"
  config.model.norm_position = "pre"
  config.model.activation = "gelu"
  config.model.dtype = "float32"  # bfloat16: computes in bf16, parameters and loss in float32.
  config.model.remat = "none"  # full or save_dots: recompute activations, save memory.
  config.model.scan_layers = False  # One compiled block scanned over the layers.
  config.model.classifier_body = "encoder"  # classify: encoder (BERT) or decoder (GPT).
  config.model.norm_epsilon = 1e-5
  config.model.quantize = "none"  # int8: weight-only int8 matmuls (inference modes only).

  config.data = ml_collections.ConfigDict()
  config.data.path = os.path.normpath(_SHIPPED_TEXT)
  config.data.format = "text"
  config.data.text_field = "text"
  config.data.target_path = ""
  config.data.invalid_utf8 = "fail"
  config.data.unicode_normalization = "none"
  config.data.remove_control_characters = False
  config.data.normalize_whitespace = False
  config.data.tokenizer = "char"
  config.data.vocab_size = 0
  config.data.tokenizer_path = ""
  config.data.special_token_names = ""  # ROLE=TOKEN,...: e.g. eos=<|endoftext|>.
  config.data.packing = "stream"
  config.data.chunk_overlap = 0
  config.data.validation_fraction = 0.1
  config.data.test_fraction = 0.0
  config.data.dataset = ""  # A catalogued dataset (wikitext-2, uci-sentiment) instead of path.
  config.data.data_dir = ""  # Where named datasets live; "" = ~/.cache/transformer_jax/datasets.
  config.data.label_field = "label"  # Labelled jsonl (classify): the label's field.

  config.train = ml_collections.ConfigDict()
  config.train.num_steps = 2000
  config.train.batch_size = 12
  config.train.learning_rate = 1e-3
  config.train.end_learning_rate = 1e-4
  config.train.warmup_steps = 100
  # Follows num_steps unless overridden, so `--config.train.num_steps=N` keeps a full cosine.
  # `* 1` makes a derived reference: a bare get_ref() is shared with num_steps, and
  # overriding decay_steps would silently change num_steps too.
  config.train.decay_steps = config.train.get_ref("num_steps") * 1
  config.train.adam_beta1 = 0.9
  config.train.adam_beta2 = 0.99
  config.train.adam_epsilon = 1e-8
  config.train.weight_decay = 0.1
  config.train.grad_clip_norm = 1.0
  config.train.seed = 1337
  config.train.log_every_steps = 50
  config.train.eval_every_steps = 250
  config.train.checkpoint_every_steps = 500
  config.train.keep_checkpoints = 3
  config.train.steps_per_call = 1
  config.train.label_smoothing = 0.0
  config.train.init_from = ""  # A workdir, DIR@STEP or hf:DIR whose parameters start this run.
  config.train.init_unmatched = ""  # Regexes: parameter paths a warm start may leave unmatched.
  config.train.trainable = ".*"  # Regexes: the parameters that train; the rest are frozen.
  config.train.microbatches = 1  # Gradient accumulation: micro-batches per device per step.
  config.train.flat_gradient_all_reduce = False  # One flat gradient all-reduce (pure DP).
  config.train.max_nonfinite_steps = 5  # Skipped NaN/inf steps in a row before the run stops.

  config.eval = ml_collections.ConfigDict()
  config.eval.num_batches = 20
  config.eval.batch_size = config.train.get_ref("batch_size") * 1  # See decay_steps.
  config.eval.stride = 0
  config.eval.bleu_pairs = 0  # seq2seq: validation BLEU at every evaluation.

  config.decode = ml_collections.ConfigDict()
  config.decode.strategy = "sample"
  config.decode.prompt = "\n"
  config.decode.max_new_tokens = 500
  config.decode.temperature = 0.8
  config.decode.top_k = 200
  config.decode.top_p = 1.0  # 1.0: off.
  config.decode.beam_size = 4  # strategy=beam (seq2seq translation, clm sampling).
  config.decode.length_penalty = 0.6  # strategy=beam: GNMT's alpha.
  config.decode.seed = 0

  # How a run adapts a base (train.init_from): full, head, lora, prefix or prompt.
  config.finetune = ml_collections.ConfigDict()
  config.finetune.method = "full"
  config.finetune.lora_rank = 8
  config.finetune.lora_alpha = 16.0
  config.finetune.lora_targets = ".*attention/(query|value)/kernel"
  config.finetune.lora_dropout = 0.0
  config.finetune.prefix_length = 16
  config.finetune.prefix_hidden = 0  # > 0: Li & Liang's MLP reparametrisation, this wide.
  config.finetune.prompt_length = 16
  config.finetune.prompt_init = ""  # "": embeddings of drawn vocabulary tokens; else a text.

  config.mesh = ml_collections.ConfigDict()
  config.mesh.data_axis_size = -1  # -1: the devices the other axes leave.
  config.mesh.fsdp_axis_size = 1  # > 1: parameters and optimizer state sharded (ZeRO-3).
  config.mesh.tensor_axis_size = 1  # > 1: heads and MLP width sharded (Megatron).
  config.mesh.axis_rules = ""  # Overrides of partitioning.LOGICAL_AXIS_RULES: 'vocab=tensor'.
  config.mesh.num_cpu_devices = 0
  return config


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  preset = preset or "default"
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r} for configs/clm.py; choose one of {PRESETS}")
  config = base()
  if preset in ("default", "baby", "code", "wikitext"):
    # Sized for a 2-core CPU: one single-threaded device per core is ~1.7x faster.
    config.mesh.num_cpu_devices = 2
    config.train.steps_per_call = 10
  if preset == "baby":  # No dropout, so the flat all-reduce gives the same run on any mesh.
    config.train.flat_gradient_all_reduce = True
  if preset == "default":
    config.model.max_length = 128
    config.train.batch_size = 16
    config.train.num_steps = 5000
    config.train.learning_rate = 2e-3
    config.train.end_learning_rate = 2e-4
    config.train.warmup_steps = 200
    config.train.log_every_steps = 100
    config.train.eval_every_steps = 500
    config.train.checkpoint_every_steps = 1000
    config.eval.num_batches = 50
  elif preset == "shakespeare":
    config.model.num_layers = 6
    config.model.num_heads = 6
    config.model.model_dim = 384
    config.model.mlp_dim = 4 * 384
    config.model.max_length = 256
    config.model.dropout_rate = 0.2
    config.train.batch_size = 64
    config.train.num_steps = 5000
    config.train.eval_every_steps = 250
    config.eval.num_batches = 200
  elif preset == "code":
    config.data.path = ""
    config.data.format = "python_stdlib"
    config.data.tokenizer = "bpe"
    config.data.vocab_size = 2048
    config.data.packing = "documents"
    config.data.chunk_overlap = 32
    config.data.validation_fraction = 0.05
    config.data.test_fraction = 0.05
    config.model.max_length = 256
    config.train.batch_size = 16
    config.train.num_steps = 1500
    config.train.learning_rate = 2e-3
    config.train.end_learning_rate = 2e-4
    config.train.eval_every_steps = 250
    config.train.log_every_steps = 50
    config.decode.prompt = "def fibonacci(n):\n"
    config.decode.max_new_tokens = 120
    config.decode.temperature = 0.6
    config.decode.top_k = 20
  elif preset == "gpt2":
    config.model.num_layers = 12
    config.model.num_heads = 12
    config.model.model_dim = 768
    config.model.mlp_dim = 4 * 768
    config.model.max_length = 1024
    config.model.use_bias = True
    config.model.dropout_rate = 0.1
    config.data.tokenizer = "bpe"
    config.data.vocab_size = 50257
    config.train.batch_size = 8
    config.train.learning_rate = 6e-4
    config.train.end_learning_rate = 6e-5
    config.train.adam_beta2 = 0.95
  elif preset == "tiny":
    make_tiny(config, num_steps=20, max_length=32)
    config.decode.max_new_tokens = 32
  elif preset == "wikitext":
    wikitext(config)
  return config


def wikitext(config: ml_collections.ConfigDict) -> None:
  """The GPT base on WikiText-2, sized to train in under an hour on a 2-core CPU."""
  config.data.dataset = "wikitext-2"
  config.data.path = ""
  config.data.tokenizer = "bpe"
  config.data.vocab_size = 8192
  config.model.num_layers = 4
  config.model.num_heads = 4
  config.model.model_dim = 256
  config.model.mlp_dim = 4 * 256
  config.model.max_length = 128
  config.model.dropout_rate = 0.1
  config.train.batch_size = 32
  config.train.num_steps = 3000  # 12.3M tokens, 4.6 epochs of the 2.69M training tokens.
  config.train.learning_rate = 1.5e-3
  config.train.end_learning_rate = 1.5e-4
  config.train.warmup_steps = 200
  config.train.log_every_steps = 100
  config.train.eval_every_steps = 500
  config.train.checkpoint_every_steps = 500
  config.eval.num_batches = 20
  config.eval.stride = 64  # --mode=eval: every token scored with at least 65 of context.
  config.decode.prompt = " = Valkyria Chronicles = \n"
  config.decode.max_new_tokens = 200


def make_tiny(config: ml_collections.ConfigDict, num_steps: int, max_length: int) -> None:
  """Shrinks any config to the tests' size: 2 layers x 32 wide, batch 8, a few seconds;
  logs every 5 steps, evaluates and checkpoints at the middle and the end."""
  config.model.num_layers = 2
  config.model.num_heads = 2
  config.model.model_dim = 32
  config.model.mlp_dim = 64
  config.model.max_length = max_length
  config.model.dropout_rate = 0.0
  config.train.batch_size = 8
  config.train.num_steps = num_steps
  config.train.warmup_steps = 2
  config.train.log_every_steps = 5
  config.train.eval_every_steps = num_steps // 2
  config.train.checkpoint_every_steps = num_steps // 2
  config.eval.num_batches = 2
