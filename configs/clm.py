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
  tatoeba      a bilingual GPT base for configs/sft.py: the English and the Chinese
               sentences of the shipped Tatoeba *training* pairs as separate documents
               (split as seq2seq and sft split them), a byte-level BPE of both languages.
  tiny         a few seconds, for tests.

`base()` holds every section; configs/mlm.py and configs/seq2seq.py start from it.
"""

import os

import ml_collections

from transformer_jax import default_config

_SHIPPED_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                             "experiments", "data")
_SHIPPED_TEXT = os.path.join(_SHIPPED_DATA, "tinyshakespeare.txt.gz")
# English<TAB>Chinese<TAB>attribution: configs/seq2seq.py, configs/sft.py and the tatoeba base.
SHIPPED_PAIRS = os.path.normpath(os.path.join(_SHIPPED_DATA, "tatoeba_eng_cmn.txt.gz"))
PAIR_SPLIT_SEED = 1337  # train.seed of the pair presets: the same held-out pairs for each.
PRESETS = ("default", "baby", "shakespeare", "code", "gpt2", "tiny", "wikitext", "tatoeba")


def base() -> ml_collections.ConfigDict:
  """The library's defaults (`transformer_jax/default_config.py`: every field, commented)
  with data.path on the shipped Tiny Shakespeare."""
  config = default_config.base()
  config.data.path = os.path.normpath(_SHIPPED_TEXT)
  return config


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  preset = preset or "default"
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r} for configs/clm.py; choose one of {PRESETS}")
  config = base()
  if preset in ("default", "baby", "code", "wikitext", "tatoeba"):
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
  elif preset == "tatoeba":
    tatoeba(config)
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
  config.train.num_steps = 2200  # 9.0M tokens (3.3 epochs of 2.69M): ~57 min at 2,650 tokens/s.
  config.train.learning_rate = 2e-3
  config.train.end_learning_rate = 2e-4
  config.train.warmup_steps = 200
  config.train.log_every_steps = 100
  config.train.eval_every_steps = 500
  config.train.checkpoint_every_steps = 500
  config.eval.num_batches = 20
  config.eval.stride = 64  # --mode=eval: every token scored with at least 65 of context.
  config.decode.prompt = " = Valkyria Chronicles = \n"
  config.decode.max_new_tokens = 200


def tatoeba(config: ml_collections.ConfigDict) -> None:
  """The bilingual GPT base of configs/sft.py: monolingual English and Chinese sentences of
  the Tatoeba training pairs, never a validation or test pair's."""
  d = config.data
  d.path = SHIPPED_PAIRS
  d.format = "tsv"
  d.pair_documents = "sides"
  d.packing = "documents"
  d.validation_fraction = 0.05  # configs/seq2seq.py's split (with train.seed below).
  d.test_fraction = 0.05
  d.tokenizer = "bpe"
  d.vocab_size = 8000  # As the encoder-decoder's joint BPE.
  config.model.num_layers = 4
  config.model.num_heads = 4
  config.model.model_dim = 256
  config.model.mlp_dim = 4 * 256
  config.model.max_length = 128
  config.model.dropout_rate = 0.1
  t = config.train
  t.seed = PAIR_SPLIT_SEED
  t.batch_size = 32  # Rows of 128 tokens.
  t.num_steps = 600  # 2.5M tokens: ~6.6 epochs of the ~370k training tokens.
  t.learning_rate = 1.5e-3
  t.end_learning_rate = 1.5e-4
  t.warmup_steps = 100
  t.log_every_steps = 50
  t.eval_every_steps = 250
  t.checkpoint_every_steps = 500
  config.eval.num_batches = 10
  config.eval.stride = 0
  config.decode.prompt = "I"
  config.decode.max_new_tokens = 40


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
