"""Writes the Hugging Face golden fixtures under tests/fixtures/ (run by hand, rarely).

  pip install -e '.[hf]'   # torch (a CPU wheel) and transformers: an optional extra
  python tests/make_hf_fixtures.py

Builds, with `transformers` and `tokenizers`, a tiny random GPT2LMHeadModel (2 layers,
32 wide, tanh GELU, a 300-token byte-level BPE with <|endoftext|>) and a tiny random
BertForPreTraining (2 layers, 32 wide, LayerNorm epsilon 1e-12, a WordPiece vocabulary
with [PAD] [UNK] [CLS] [SEP] [MASK]), each trained on the few sentences below, and
saves them as Hugging Face folders (config.json, model.safetensors, tokenizer files).
Beside each it records the model's float32 outputs on fixed inputs (`inputs.json`,
`logits.npy`; BERT also `next_sentence_logits.npy`), which tests/test_hf_import.py
matches after importing the folder. Weights are drawn with torch.manual_seed(0) and a
larger initializer_range than the default, so outputs are far from uniform. Rerunning
rewrites the folders; commit them with the test that reads them.
"""

import json
import os
import shutil

import numpy as np
import tokenizers
import torch
import transformers
from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
TEXTS = ["To be, or not to be, that is the question:",
         "Whether 'tis nobler in the mind to suffer",
         "The slings and arrows of outrageous fortune,",
         "Or to take arms against a sea of troubles",
         "And by opposing end them. To die, to sleep;",
         "No more; and by a sleep to say we end",
         "The heart-ache and the thousand natural shocks"]
GPT2_TEXT = "To be, or not to be: the question."
BERT_PAIR = ("to be or not to be", "that is the question")


def _fresh(name: str) -> str:
  path = os.path.join(FIXTURES, name)
  shutil.rmtree(path, ignore_errors=True)
  os.makedirs(path)
  return path


def _save_outputs(path: str, inputs: dict, **arrays) -> None:
  with open(os.path.join(path, "inputs.json"), "w", encoding="utf-8") as f:
    json.dump(inputs, f, indent=1)
  for name, array in arrays.items():
    np.save(os.path.join(path, f"{name}.npy"), np.asarray(array, np.float32))


def gpt2() -> None:
  tokenizer = tokenizers.Tokenizer(models.BPE())
  tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tokenizer.decoder = decoders.ByteLevel()
  tokenizer.train_from_iterator(TEXTS, trainers.BpeTrainer(
      vocab_size=300, special_tokens=["<|endoftext|>"], show_progress=False,
      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
  fast = transformers.PreTrainedTokenizerFast(
      tokenizer_object=tokenizer, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
      unk_token="<|endoftext|>")
  config = transformers.GPT2Config(
      vocab_size=tokenizer.get_vocab_size(), n_positions=32, n_embd=32, n_layer=2, n_head=2,
      activation_function="gelu_new", initializer_range=0.2,
      bos_token_id=tokenizer.token_to_id("<|endoftext|>"),
      eos_token_id=tokenizer.token_to_id("<|endoftext|>"))
  torch.manual_seed(0)
  model = transformers.GPT2LMHeadModel(config).eval()
  path = _fresh("hf_gpt2_tiny")
  model.save_pretrained(path)
  fast.save_pretrained(path)
  ids = tokenizer.encode(GPT2_TEXT).ids
  with torch.no_grad():
    logits = model(torch.tensor([ids])).logits
  _save_outputs(path, {"text": GPT2_TEXT, "input_ids": ids}, logits=logits.numpy())


def bert() -> None:
  special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
  tokenizer = tokenizers.Tokenizer(models.WordPiece(unk_token="[UNK]"))
  tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
  tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
  tokenizer.decoder = decoders.WordPiece()
  tokenizer.train_from_iterator(TEXTS, trainers.WordPieceTrainer(
      vocab_size=120, special_tokens=special, show_progress=False))
  fast = transformers.PreTrainedTokenizerFast(
      tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
      sep_token="[SEP]", mask_token="[MASK]")
  config = transformers.BertConfig(
      vocab_size=tokenizer.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
      num_attention_heads=2, intermediate_size=64, max_position_embeddings=32,
      type_vocab_size=2, hidden_act="gelu", layer_norm_eps=1e-12, initializer_range=0.2)
  torch.manual_seed(0)
  model = transformers.BertForPreTraining(config).eval()
  path = _fresh("hf_bert_tiny")
  model.save_pretrained(path)
  fast.save_pretrained(path)
  first, second = (tokenizer.encode(text).ids for text in BERT_PAIR)
  cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
  ids = [cls] + first + [sep] + second + [sep]
  types = [0] * (len(first) + 2) + [1] * (len(second) + 1)
  with torch.no_grad():
    out = model(torch.tensor([ids]), token_type_ids=torch.tensor([types]))
  _save_outputs(path, {"pair": BERT_PAIR, "input_ids": ids, "token_type_ids": types},
                logits=out.prediction_logits.numpy(),
                next_sentence_logits=out.seq_relationship_logits.numpy())


if __name__ == "__main__":
  gpt2()
  bert()
  print(f"wrote {FIXTURES}: torch {torch.__version__}, transformers {transformers.__version__}")
