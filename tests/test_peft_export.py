"""--mode=export --format=peft: a LoRA run's adapter as a PEFT folder for its base's
Hugging Face export, read back exactly; PeftModel's logits equal ours where torch,
transformers and peft are installed (skipped otherwise)."""

import json

import jax
import numpy as np
import pytest
from safetensors.numpy import load_file

import transformer_jax as tj
from conftest import SHARED_DATA, TRACEBACK, last_line, run_launch, tiny_config
from transformer_jax import parameter_paths, tasks
from transformer_jax.adapters import export as adapter_export
from transformer_jax.interop import hf_export, peft_export
from transformer_jax.run.modes import ModeInputs

TARGETS = ".*attention/(query|value)/kernel,.*mlp/input/kernel"  # c_attn (2r) and c_fc (r).


@pytest.fixture(scope="module")
def clm_lora(tiny_run, tmp_path_factory):
  """LoRA on the tiny GPT's query, value and MLP input kernels, 6 steps (in-process)."""
  workdir = tmp_path_factory.mktemp("clm_lora") / "workdir"
  cfg = tiny_config(**{"train.init_from": str(tiny_run), "finetune.method": "lora",
                       "finetune.lora_targets": TARGETS, "train.num_steps": 6,
                       "train.learning_rate": 3e-2, "decode.max_new_tokens": 0})
  tasks.run(cfg, str(workdir), "train", ModeInputs())
  return cfg, workdir


def _export(cfg, workdir, output, form):
  tasks.run(cfg, str(workdir), "export", ModeInputs(output_path=str(output), format=form))
  return output


def _ours_from_hf(loaded, merged_hf, labels=()):
  """The Hugging Face tensors converted back through the name table, as our paths."""
  arrays = {}
  for rule in hf_export.rules(loaded.config, len(labels)):
    name = rule.hf if rule.head else hf_export.family(loaded.config).PREFIX + rule.hf
    if name in merged_hf:
      arrays.update(zip(rule.ours, rule.to_ours(merged_hf[name])))
  return arrays


def _assert_same(ours, expected):
  """Every weight of the run read back; what Hugging Face has and the run has not (GPT-2's
  biases of a model.use_bias=False run) is zero."""
  assert set(expected) <= set(ours)
  for path, value in ours.items():
    np.testing.assert_allclose(value, expected.get(path, 0), atol=1e-6, err_msg=path)


def _merged_ours(loaded):
  merged, _ = adapter_export.standalone(loaded.params, loaded.model, loaded.config.finetune)
  return {p: np.asarray(v) for p, v in parameter_paths.flat(jax.device_get(merged)).items()}


def test_a_gpt_adapter_reads_back_to_the_runs_merged_weights(clm_lora, tiny_run, tmp_path):
  cfg, workdir = clm_lora
  folder = _export(cfg, workdir, tmp_path / "peft", "peft")
  config = json.loads((folder / peft_export.CONFIG_FILE).read_text())
  assert config["fan_in_fan_out"] and config["task_type"] == "CAUSAL_LM"
  assert config["rank_pattern"] == {"transformer.h.0.attn.c_attn": 16,
                                    "transformer.h.1.attn.c_attn": 16}  # Query + value: 2r.
  assert "transformer.h.1.mlp.c_fc" in config["target_modules"]
  tensors = load_file(str(folder / peft_export.WEIGHTS_FILE))
  b = tensors["base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"]
  assert b.shape == (96, 16) and not b[32:64].any()  # The key's rows are zero.
  base = _export(tiny_config(**{"train.init_from": str(tiny_run)}), tmp_path / "b",
                 tmp_path / "base-hf", "hf")
  merged = peft_export.merged_tensors(str(folder), load_file(str(base / "model.safetensors")))
  loaded = tj.load(str(workdir))
  ours, expected = _ours_from_hf(loaded, merged), _merged_ours(loaded)
  _assert_same(ours, expected)


def test_a_bert_classifiers_adapter_and_head_read_back(classify_lora_run, mlm_base, tmp_path):
  base_cfg = tiny_config("mlm", **{"train.init_from": str(mlm_base),
                                   "data.tokenizer": "bpe", "model.max_length": 48})
  base = _export(base_cfg, tmp_path / "b", tmp_path / "base-hf", "hf")
  cfg = tiny_config("classify", **{"data.data_dir": str(SHARED_DATA), "finetune.method": "lora",
                                   "train.init_from": str(mlm_base)})
  folder = _export(cfg, classify_lora_run, tmp_path / "peft", "peft")
  config = json.loads((folder / peft_export.CONFIG_FILE).read_text())
  assert config["modules_to_save"] == ["classifier"] and not config["fan_in_fan_out"]
  assert config["rank_pattern"] == {} and config["task_type"] == "SEQ_CLS"
  merged = peft_export.merged_tensors(str(folder), load_file(str(base / "model.safetensors")))
  loaded = tj.load(str(classify_lora_run))
  ours, expected = _ours_from_hf(loaded, merged, loaded.labels), _merged_ours(loaded)
  _assert_same(ours, expected)
  # The whole classifier, merged, as a BertForSequenceClassification folder.
  whole = _export(cfg, classify_lora_run, tmp_path / "hf", "hf")
  hf_config = json.loads((whole / "config.json").read_text())
  assert hf_config["architectures"] == ["BertForSequenceClassification"]
  assert hf_config["id2label"] == {"0": "0", "1": "1"}


def test_what_peft_cannot_hold_is_one_line(tiny_run, tmp_path):
  result = run_launch("--config=configs/clm.py:tiny", f"--workdir={tiny_run}", "--mode=export",
                      "--format=peft", f"--output={tmp_path / 'out'}")
  assert result.returncode == 1 and TRACEBACK not in result.stderr
  assert last_line(result.stderr) == (
      "error: --format=peft writes a LoRA run's adapter (finetune.method=lora), not "
      "finetune.method=full: --format=hf writes a whole model")
  assert not (tmp_path / "out").exists()


def test_peft_loads_the_adapter_to_our_logits(clm_lora, tiny_run, tmp_path):
  """PeftModel.from_pretrained(the base's export, the adapter) gives our logits."""
  torch = pytest.importorskip("torch", reason="needs torch, transformers and peft")
  transformers = pytest.importorskip("transformers", reason="needs torch, transformers, peft")
  peft = pytest.importorskip("peft", reason="needs torch, transformers and peft")
  cfg, workdir = clm_lora
  folder = _export(cfg, workdir, tmp_path / "peft", "peft")
  base = _export(tiny_config(**{"train.init_from": str(tiny_run)}), tmp_path / "b",
                 tmp_path / "base-hf", "hf")
  model = peft.PeftModel.from_pretrained(
      transformers.AutoModelForCausalLM.from_pretrained(str(base)), str(folder)).eval()
  loaded = tj.load(str(workdir))
  tokens = np.asarray([loaded.tokenizer.encode("ROMEO: But soft, what light")], np.int32)
  ours = np.asarray(loaded.model.apply({"params": loaded.params}, tokens,
                                       deterministic=True).logits)
  with torch.no_grad():
    theirs = model(torch.tensor(tokens, dtype=torch.long)).logits.numpy()
  assert np.abs(ours - theirs).max() <= 1e-4
