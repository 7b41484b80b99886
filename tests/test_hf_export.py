"""--mode=export --format=hf: GPT-2 and BERT folders that import back bit-exactly and, where
torch and transformers are installed, give transformers the same logits."""

import dataclasses
import json

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import TRACEBACK, last_line, run_launch, tiny_config
from decoding_models import random_params
from transformer_jax.data.tokenizers.bpe_tokenizer import BpeTokenizer
from transformer_jax.errors import UserError
from transformer_jax.interop import hf_export, hf_folder, hf_import
from transformer_jax.models.bert import BertPretraining
from transformer_jax.models.decoder import Decoder
from transformer_jax import parameter_paths

TOKENS = np.asarray([[5, 3, 9, 1, 4, 2, 7]], np.int32)
TOKENIZER = BpeTokenizer.train(["To be, or not to be, that is the question"] * 3, 270,
                               ("<pad>", "<eos>"))


def _gpt2(**model_overrides):
  cfg = tiny_config("clm", **{"model.use_bias": True, "model.activation": "gelu_tanh",
                              **model_overrides})
  cfg = dataclasses.replace(cfg, model=dataclasses.replace(
      cfg.model, vocab_size=TOKENIZER.vocab_size))
  model = Decoder(cfg.model)
  return cfg, model, random_params(model, jnp.asarray(TOKENS), stddev=0.3)


def _bert():
  cfg = tiny_config("mlm", **{"model.norm_epsilon": 1e-12})
  cfg = dataclasses.replace(cfg, model=dataclasses.replace(
      cfg.model, vocab_size=TOKENIZER.vocab_size))
  model = BertPretraining(cfg.model)
  return cfg, model, random_params(model, jnp.asarray(TOKENS), stddev=0.3)


@pytest.mark.parametrize("family", ["gpt2", "bert"])
def test_export_then_import_is_bit_exact(tmp_path, family):
  cfg, _, params = _gpt2() if family == "gpt2" else _bert()
  hf_export.write(str(tmp_path / "hf"), cfg, TOKENIZER, params)
  folder = hf_folder.open_folder(str(tmp_path / "hf"))
  assert folder.config["model_type"] == family
  wanted = parameter_paths.flat(params)
  signatures = hf_import.check(folder, cfg.model, cfg.experiment, ())
  assert set(signatures) == set(wanted)
  back = hf_import.read(folder, cfg.model, wanted)
  for path, value in wanted.items():
    np.testing.assert_array_equal(back[path], np.asarray(value), err_msg=path)


def test_a_model_without_biases_exports_zero_biases(tmp_path):
  cfg, _, params = _gpt2(**{"model.use_bias": False})
  written = hf_export.tensors(cfg, params)
  assert not written["transformer.h.0.attn.c_attn.bias"].any()
  assert not written["transformer.ln_f.bias"].any()
  np.testing.assert_array_equal(written["transformer.h.1.mlp.c_fc.weight"],
                                params["block_1"]["mlp"]["input"]["kernel"])


def test_a_model_of_another_shape_is_refused_one_line_per_field():
  cfg, _, _ = _gpt2(**{"model.position": "rope", "model.activation": "swiglu"})
  with pytest.raises(UserError) as error:
    hf_export.check_exportable(cfg)
  assert str(error.value).splitlines() == [
      "--format=hf: this model is not gpt2-shaped:",
      "  model.position='rope' (GPT-2: 'learned')",
      "  model.activation='swiglu' (GPT-2: gelu_tanh, gelu or relu)"]


def _torch_logits(directory, family, tokens, token_types=None):
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  model_class = (transformers.GPT2LMHeadModel if family == "gpt2"
                 else transformers.BertForPreTraining)
  model = model_class.from_pretrained(directory).eval()
  with torch.no_grad():
    kwargs = {} if token_types is None else {"token_type_ids": torch.tensor(token_types)}
    out = model(torch.tensor(tokens, dtype=torch.long), **kwargs)
  if family == "gpt2":
    return out.logits.numpy(), None
  return out.prediction_logits.numpy(), out.seq_relationship_logits.numpy()


@pytest.mark.parametrize("family, use_bias", [("gpt2", False), ("gpt2", True), ("bert", True)])
def test_transformers_loads_the_export_with_the_same_logits(tmp_path, family, use_bias):
  pytest.importorskip("torch")
  pytest.importorskip("transformers")
  cfg, model, params = _gpt2(**{"model.use_bias": use_bias}) if family == "gpt2" else _bert()
  hf_export.write(str(tmp_path / "hf"), cfg, TOKENIZER, params)
  types = np.asarray([[0, 0, 0, 1, 1, 1, 1]], np.int32)
  kwargs = {} if family == "gpt2" else {"token_types": jnp.asarray(types)}
  ours = model.apply({"params": params}, jnp.asarray(TOKENS), deterministic=True, **kwargs)
  logits, next_sentence = _torch_logits(str(tmp_path / "hf"), family, TOKENS,
                                        None if family == "gpt2" else types)
  assert np.abs(np.asarray(ours.logits) - logits).max() <= 1e-4
  if family == "bert":
    assert np.abs(np.asarray(ours.next_sentence_logits)[:, ::-1] - next_sentence).max() <= 1e-4
  transformers = pytest.importorskip("transformers")
  tokenizer = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
  assert tokenizer("To be, or not")["input_ids"] == TOKENIZER.encode("To be, or not").tolist()


@pytest.mark.slow  # A long end-to-end launch.py run: see setup.cfg's markers.
def test_from_launch_an_export_is_written_once(tmp_path, tiny_run):
  target = tmp_path / "gpt2"
  result = run_launch("--config=configs/clm.py:tiny", f"--workdir={tiny_run}", "--mode=export",
                      "--format=hf", f"--output={target}")
  assert result.returncode == 0, result.stderr[-3000:]
  config = json.loads((target / "config.json").read_text())
  assert (config["model_type"], config["activation_function"], config["n_layer"]) == (
      "gpt2", "gelu", 2)
  assert (target / "vocabulary.json").exists()  # A character vocabulary, copied.
  again = run_launch("--config=configs/clm.py:tiny", f"--workdir={tiny_run}", "--mode=export",
                     "--format=hf", f"--output={target}")
  assert again.returncode != 0 and TRACEBACK not in again.stderr
  assert last_line(again.stderr) == (f"error: --output={target} exists and is not an empty "
                                     "directory; nothing is overwritten: choose a new one")
