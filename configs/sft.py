"""Supervised fine-tuning of a decoder-only GPT: English -> Chinese on the shipped Tatoeba pairs.

Each pair is `English <eos> Chinese <eos>` with the loss on the Chinese side; pairs are
split by English sentence exactly as configs/seq2seq.py splits them (same fractions
and seed), so test BLEU compares with the encoder-decoder's.
Presets (`--config=configs/sft.py:<preset>`):
  (none)  the bilingual Tatoeba GPT base (runs/clm-tatoeba, from configs/clm.py:tatoeba:
          the training pairs' English and Chinese sentences, a BPE of both languages), all
          its weights trained; --config.finetune.method=lora (or prefix, prompt) adapts.
          `--config.train.init_from=runs/clm-wikitext` fine-tunes the English WikiText-2
          base instead (the same 4 x 256 shape and context).
  lora    the same base and pairs, LoRA rank 64 (alpha 128) on every block kernel at lr
          2e-3: the rank and rate chosen on validation BLEU (experiments/README.md).
  tiny    a tiny GPT from scratch with a small BPE, for tests.
"""

import os

import ml_collections

from configs import clm

PRESETS = ("default", "lora", "tiny")
GPT_BASE = os.path.join("runs", "clm-tatoeba")


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  preset = preset or "default"
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r} for configs/sft.py; choose one of {PRESETS}")
  config = clm.get_config("tatoeba")  # The base's model and its pairs' split.
  config.experiment = "sft"
  d = config.data
  d.pair_documents = "joined"  # sft reads the pairs themselves.
  t = config.train
  t.init_from = GPT_BASE
  t.batch_size = 32  # Rows of 128 tokens, ~3 pairs each.
  t.num_steps = 600  # ~58k pairs, 2.2 epochs of the ~26k training pairs.
  t.learning_rate = 3e-4
  t.end_learning_rate = 3e-5
  t.warmup_steps = 100
  t.steps_per_call = 10
  t.log_every_steps = 50
  t.eval_every_steps = 300
  t.checkpoint_every_steps = 300
  t.keep_checkpoints = 1
  config.eval.num_batches = 8
  config.eval.stride = 0
  config.eval.bleu_pairs = 256
  config.decode.strategy = "greedy"
  config.decode.max_new_tokens = 64  # Chinese characters are 3 bytes: up to ~25 of them.
  config.decode.prompt = "I am a student."
  config.finetune.lora_targets = ".*/kernel"  # Every block matrix: a new language to write.
  config.mesh.num_cpu_devices = 2
  if preset == "lora":  # Searched: rank 16 and 64, lr 1e-3 to 1e-2.
    f = config.finetune
    f.method = "lora"
    f.lora_rank = 64
    f.lora_alpha = 2 * f.lora_rank  # alpha / rank = 2, as every row of the search.
    t.learning_rate = 2e-3
    t.end_learning_rate = 2e-4
  if preset == "tiny":
    clm.make_tiny(config, num_steps=30, max_length=48)
    t.init_from = ""
    t.steps_per_call = 1
    t.learning_rate = 3e-3
    d.vocab_size = 400
    config.mesh.num_cpu_devices = 0
    config.eval.bleu_pairs = 8
    config.decode.max_new_tokens = 12
  return config
