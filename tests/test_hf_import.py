"""train.init_from=hf:DIR: Hugging Face GPT-2 and BERT folders, against golden logits.

The folders under tests/fixtures/ and their logits come from tests/make_hf_fixtures.py
(tiny random models built with transformers; rerun it by hand to regenerate them).
"""

import json
import os
import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from conftest import run_launch, tiny_config
from transformer_jax.tasks import clm as clm_experiment
from transformer_jax.tasks import mlm as mlm_experiment
from transformer_jax.data.tokenizers import special_tokens
from transformer_jax.data.tokenizers.bpe_tokenizer import BpeTokenizer
from transformer_jax.errors import UserError
from transformer_jax.training import warm_start

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
GPT2, BERT = FIXTURES / "hf_gpt2_tiny", FIXTURES / "hf_bert_tiny"
GPT2_FLAGS = {"model.num_heads": 2, "model.model_dim": 32, "model.mlp_dim": 128,
              "model.use_bias": True, "model.activation": "gelu_tanh",
              "data.tokenizer": "bpe", "data.vocab_size": 300}
BERT_FLAGS = {"model.num_heads": 2, "model.model_dim": 32, "model.mlp_dim": 64,
              "model.norm_epsilon": 1e-12, "data.tokenizer": "wordpiece",
              "data.vocab_size": 120}


LINES = ["To be, or not to be, that is the question:", "Whether 'tis nobler in the mind",
         "to suffer the slings and arrows", "of outrageous fortune, or to take arms"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  """A small text of 80 two-line passages (Tiny Shakespeare would take the tests longer)."""
  path = tmp_path_factory.mktemp("corpus") / "hamlet.txt"
  path.write_text("\n\n".join(f"{LINES[i % 4]} {i}\n{LINES[(i + 1) % 4]}" for i in range(80)))
  return str(path)


def gpt2_task(workdir, corpus, folder=GPT2, **overrides):
  cfg = tiny_config("clm", **{"train.init_from": f"hf:{folder}", "data.path": corpus,
                              **GPT2_FLAGS, **overrides})
  return clm_experiment.build_task(cfg, str(workdir), need_data=True)


def bert_task(workdir, corpus, folder=BERT, **overrides):
  cfg = tiny_config("mlm", **{"train.init_from": f"hf:{folder}", "data.path": corpus,
                              **BERT_FLAGS, **overrides})
  return mlm_experiment.build_task(cfg, str(workdir))


def imported_params(task):
  """The warm start's parameters alone (every one, for a full import): no optimizer state."""
  assert not task.warm_start.new
  return warm_start.load(task.warm_start, task.trainer.abstract_state.params)


def _recorded(folder):
  with open(folder / "inputs.json", encoding="utf-8") as f:
    return json.load(f)


def test_gpt2_import_gives_the_recorded_logits(tmp_path, corpus):
  task = gpt2_task(tmp_path / "run", corpus)
  assert not (tmp_path / "run").exists()  # Checked; nothing written yet.
  inputs = _recorded(GPT2)
  assert task.tokenizer.encode(inputs["text"]).tolist() == inputs["input_ids"]
  assert task.tokenizer.token_id(special_tokens.EOS) == task.tokenizer.token_id("<|endoftext|>")
  logits = jax.jit(task.model.apply, static_argnames="deterministic")(
      {"params": imported_params(task)}, jnp.asarray([inputs["input_ids"]]),
      deterministic=True).logits
  expected = np.load(GPT2 / "logits.npy")
  assert np.abs(np.asarray(logits) - expected).max() <= 1e-4


def test_bert_import_gives_the_recorded_logits(tmp_path, corpus):
  task = bert_task(tmp_path / "run", corpus)
  inputs = _recorded(BERT)
  first, second = (task.tokenizer.encode(text).tolist() for text in inputs["pair"])
  cls, sep = (task.tokenizer.token_id(t) for t in (special_tokens.CLS, special_tokens.SEP))
  assert [cls] + first + [sep] + second + [sep] == inputs["input_ids"]
  assert task.tokenizer.token_id(special_tokens.MASK) == task.tokenizer.token_id("[MASK]")
  out = jax.jit(task.model.apply, static_argnames="deterministic")(
      {"params": imported_params(task)}, jnp.asarray([inputs["input_ids"]]),
      token_types=jnp.asarray([inputs["token_type_ids"]]), deterministic=True)
  assert np.abs(np.asarray(out.logits) - np.load(BERT / "logits.npy")).max() <= 1e-4
  # Hugging Face's class 0 is "B follows A"; this project's 1 is.
  assert np.abs(np.asarray(out.next_sentence_logits)[:, ::-1]
                - np.load(BERT / "next_sentence_logits.npy")).max() <= 1e-4


def test_a_config_that_disagrees_gets_one_line_per_field(tmp_path, corpus):
  with pytest.raises(UserError) as error:
    gpt2_task(tmp_path / "run", corpus, **{"model.activation": "gelu", "model.mlp_dim": 64,
                                   "model.use_bias": False})
  lines = str(error.value).splitlines()
  assert lines[0] == (f"config.train.init_from: hf:{GPT2} does not fit this run (3 problems):")
  assert sorted(line.strip() for line in lines[1:]) == [
      "--config.model.activation=gelu_tanh (config.json; this run has gelu)",
      "--config.model.mlp_dim=128 (config.json; this run has 64)",
      "--config.model.use_bias=True (config.json; this run has False)"]
  assert not (tmp_path / "run").exists()


def _altered_copy(tmp_path, change):
  folder = tmp_path / "folder"
  shutil.copytree(GPT2, folder)
  tensors = load_file(str(folder / "model.safetensors"))
  change(tensors)
  save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
  return folder


def test_missing_unused_and_misshaped_tensors_are_one_line_each(tmp_path, corpus):
  def change(tensors):
    del tensors["transformer.h.1.mlp.c_fc.bias"]
    tensors["transformer.h.0.attn.c_proj.weight"] = np.zeros((32, 16), np.float32)
    tensors["score.weight"] = np.zeros((2, 32), np.float32)
  folder = _altered_copy(tmp_path, change)
  with pytest.raises(UserError) as error:
    gpt2_task(tmp_path / "run", corpus, folder)
  assert [line.strip() for line in str(error.value).splitlines()[1:]] == [
      "tensor transformer.h.0.attn.c_proj.weight is [32, 16] in hf:"
      f"{folder} but this model needs [32, 32]",
      "missing tensor transformer.h.1.mlp.c_fc.bias (for block_1/mlp/input/bias)",
      "unused tensor score.weight [2, 32]"]
  assert not (tmp_path / "run").exists()


def test_an_untied_lm_head_is_refused(tmp_path, corpus):
  def change(tensors):
    tensors["lm_head.weight"] = tensors["transformer.wte.weight"] + 1
  with pytest.raises(UserError, match="tensor lm_head.weight differs from transformer.wte"):
    gpt2_task(tmp_path / "run", corpus, _altered_copy(tmp_path, change))


def _folder_with(tmp_path, *names, config=None):
  folder = tmp_path / "folder"
  folder.mkdir()
  for name in names:
    shutil.copy(GPT2 / name, folder / name)
  if config is not None:
    (folder / "config.json").write_text(json.dumps(config))
  return folder


@pytest.mark.parametrize("case, message", [
    ("no config", "has no config.json"),
    ("llama", "is a 'llama' model (LlamaForCausalLM); supported: gpt2, bert"),
    ("bin only", "holds pytorch_model.bin but no model.safetensors: this project reads "
                 "safetensors (numpy, no torch); convert it once"),
    ("no weights", "has no model.safetensors (nor model.safetensors.index.json)"),
    ("bert for clm", "it holds a bert model, which experiment clm cannot load"),
])
def test_a_folder_it_cannot_read_is_one_line(tmp_path, corpus, case, message):
  if case == "no config":
    folder = _folder_with(tmp_path, "model.safetensors", "tokenizer.json")
  elif case == "llama":
    folder = _folder_with(tmp_path, "tokenizer.json", config={
        "model_type": "llama", "architectures": ["LlamaForCausalLM"]})
  elif case == "bin only":
    folder = _folder_with(tmp_path, "config.json", "tokenizer.json")
    (folder / "pytorch_model.bin").write_bytes(b"not read")
  elif case == "no weights":
    folder = _folder_with(tmp_path, "config.json", "tokenizer.json")
  else:
    folder = tmp_path / "folder"
    shutil.copytree(BERT, folder)
    shutil.copy(GPT2 / "tokenizer.json", folder / "tokenizer.json")
  with pytest.raises(UserError) as error:
    gpt2_task(tmp_path / "run", corpus, folder)
  assert message in str(error.value)
  assert "\n" not in str(error.value) or case == "bert for clm"
  assert not (tmp_path / "run").exists()


def test_a_tokenizer_that_does_not_match_the_vocabulary_is_refused(tmp_path, corpus):
  folder = tmp_path / "folder"
  shutil.copytree(GPT2, folder)
  BpeTokenizer.train(["To be, or not to be"] * 5, 280, ("<|endoftext|>",)).save(  # 267 tokens
      str(folder / "tokenizer.json"))
  with pytest.raises(UserError) as error:
    gpt2_task(tmp_path / "run", corpus, folder)
  assert ("the tokenizer has 267 tokens but the weights' vocabulary has 300 (config.json "
          "vocab_size)") in str(error.value)


def test_a_bert_model_without_heads_needs_init_unmatched(tmp_path, corpus):
  folder = tmp_path / "folder"
  shutil.copytree(BERT, folder)
  tensors = load_file(str(folder / "model.safetensors"))
  bare = {name[len("bert."):]: value for name, value in tensors.items()
          if name.startswith("bert.")}  # What BertModel saves.
  save_file(bare, str(folder / "model.safetensors"), metadata={"format": "pt"})
  with pytest.raises(UserError) as error:
    bert_task(tmp_path / "run", corpus, folder)
  assert "missing tensor cls.seq_relationship.weight (for next_sentence/kernel)" in str(
      error.value)
  task = bert_task(tmp_path / "run", corpus, folder,
                   **{"train.init_unmatched": "mlm_.*,next_sentence/.*"})
  assert set(task.warm_start.new) == {"mlm_norm/bias", "mlm_norm/scale", "mlm_output_bias",
                                      "mlm_transform/bias", "mlm_transform/kernel",
                                      "next_sentence/bias", "next_sentence/kernel"}
  params = warm_start.load(task.warm_start, task.trainer.abstract_state.params)
  np.testing.assert_array_equal(params["encoder"]["block_0"]["mlp"]["input"]["kernel"],
                                bare["encoder.layer.0.intermediate.dense.weight"].T)


def test_the_fixture_folders_stay_small():
  total = sum(os.path.getsize(path) for path in FIXTURES.rglob("*") if path.is_file())
  assert total < 500_000


@pytest.mark.slow  # A long end-to-end run; the import itself is tested in-process above.
def test_from_launch_imported_gpt2_fine_tunes_and_samples(tmp_path, corpus):
  workdir = tmp_path / "run"
  flags = [f"--config.{key}={value}" for key, value in GPT2_FLAGS.items()]
  result = run_launch("--config=configs/clm.py:tiny", f"--workdir={workdir}",
                      f"--config.train.init_from=hf:{GPT2}", f"--config.data.path={corpus}",
                      "--config.train.num_steps=4", "--config.train.eval_every_steps=4",
                      "--config.decode.max_new_tokens=6", *flags)
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"warm start from hf:{GPT2} step 0: 36 parameter arrays loaded" in result.stderr
  assert (workdir / "tokenizer.json").read_bytes() == (GPT2 / "tokenizer.json").read_bytes()
  assert (workdir / "samples.txt").read_text(encoding="utf-8").startswith("===== step 4 =====")
