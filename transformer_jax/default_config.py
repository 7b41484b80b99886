"""Every field of every config section with its default: the base each config file starts from.

`configs/*.py` take it and set their presets (`configs/clm.py` points data.path at the
shipped Tiny Shakespeare); `transformer_jax.load` takes it for weights that come without
a config of this project (a Hugging Face folder), whose model fields then come from the
folder. The values are those of a small GPT on a CPU; `data.path` is empty (no corpus).
"""

import ml_collections


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
  config.model.classifier_pooling = "token"  # classify: token (<cls> / last) or mean.
  config.model.norm_epsilon = 1e-5
  config.model.quantize = "none"  # int8: weight-only int8 matmuls (inference modes only).

  config.data = ml_collections.ConfigDict()
  config.data.path = ""  # A file, a glob or a comma-separated list (configs/clm.py: Shakespeare).
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
  # clm on pairs (tsv, aligned): "joined" = one `source<TAB>target` document per pair;
  # "sides" = every distinct side its own document, the pairs split as seq2seq splits them.
  config.data.pair_documents = "joined"
  config.data.validation_fraction = 0.1
  config.data.test_fraction = 0.0
  config.data.dataset = ""  # A catalogued dataset (wikitext-2, uci-sentiment) instead of path.
  config.data.data_dir = ""  # Where named datasets live; "" = ~/.cache/transformer_jax/datasets.
  config.data.label_field = "label"  # Labelled jsonl (classify): the label's field.
  config.data.validation_path = ""  # A validation file of data.path's format; "" splits data.path.
  config.data.test_path = ""  # A test file likewise ("" holds out data.test_fraction).
  # classify: train on this many training examples, a stratified subset fixed by
  # data.subset_seed and nested in every larger one (0: all of them).
  config.data.train_examples = 0
  config.data.subset_seed = 0

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
  config.eval.few_shot_examples = 0  # sft: training pairs written before every prompt.

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
