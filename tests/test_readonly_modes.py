"""Read-only modes on weights that were never trained in the workdir: train.init_from alone.

eval, sample, translate, attention, predict and export work on an empty (or new)
workdir when train.init_from names weights (DIR, DIR@STEP, hf:DIR): the tokenizer comes
from there, no data.vocab_size is needed, and nothing is written into the workdir but
the files the mode always writes (metrics.jsonl, samples.txt).
"""

import json
import pathlib

import numpy as np
import pytest

import transformer_jax as tj
from conftest import SHARED_DATA, TRACEBACK, by_step, last_line, run_launch, tiny_config
from transformer_jax import tasks
from transformer_jax.run.modes import ModeInputs
from transformer_jax.training.metrics_writer import read_metrics

GPT2 = pathlib.Path(__file__).resolve().parent / "fixtures" / "hf_gpt2_tiny"


def _files(workdir: pathlib.Path) -> set[str]:
  return {p.name for p in workdir.iterdir()} if workdir.exists() else set()


@pytest.mark.slow  # A long end-to-end launch.py run: see setup.cfg's markers.
def test_a_hugging_face_folder_alone_needs_no_model_flags(tmp_path):
  """The tiny GPT-2 once needed six flags (tokenizer, vocab_size, max_length, mlp_dim,
  use_bias, activation); its config.json and tokenizer.json now say them."""
  workdir = tmp_path / "gpt2-zero-shot"
  flags = ("--config=configs/clm.py:tiny", f"--workdir={workdir}",
           f"--config.train.init_from=hf:{GPT2}")
  evaluated = run_launch(*flags, "--mode=eval")
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  assert "model.activation=gelu_tanh" in evaluated.stderr  # Taken from config.json.
  (record,) = read_metrics(str(workdir))
  assert record["step"] == 0 and record["eval_loss"] > 0
  sampled = run_launch(*flags, "--mode=sample", "--prompt=To be", "--config.decode.max_new_tokens=5")
  assert sampled.returncode == 0, sampled.stderr[-3000:]
  assert sampled.stdout.startswith("To be")
  exported = run_launch(*flags, "--mode=export", f"--output={tmp_path / 'native'}")
  assert exported.returncode == 0, exported.stderr[-3000:]
  assert _files(workdir) == {"metrics.jsonl", "samples.txt"}
  assert {"model.safetensors", "config.json", "tokenizer.json"} <= _files(tmp_path / "native")
  # A flag the user passes and the folder contradicts is still one line.
  refused = run_launch(*flags, "--mode=eval", "--config.model.mlp_dim=64")
  assert refused.returncode == 1 and TRACEBACK not in refused.stderr
  assert "--config.model.mlp_dim=128 (config.json; this run has 64)" in refused.stderr


def test_eval_attention_and_export_of_a_workdirs_checkpoint(tmp_path, tiny_run):
  workdir = tmp_path / "empty"
  cfg = tiny_config(**{"train.init_from": f"{tiny_run}@10"})
  tasks.run(cfg, str(workdir), "eval", ModeInputs())
  (record,) = read_metrics(str(workdir))
  assert record["step"] == 10
  assert record["eval_loss"] == pytest.approx(by_step(tiny_run, "eval_loss")[10], rel=1e-6)
  cfg = tiny_config(**{"train.init_from": str(tiny_run)})
  tasks.run(cfg, str(workdir), "attention", ModeInputs(input_path="ROMEO: But soft",
                                                        output_path=str(tmp_path / "maps")))
  assert (tmp_path / "maps" / "self_attention.npy").exists()
  tasks.run(cfg, str(workdir), "export", ModeInputs(output_path=str(tmp_path / "exported")))
  assert _files(workdir) == {"metrics.jsonl"}
  exported, original = tj.load(str(tmp_path / "exported")), tj.load(str(tiny_run))
  assert exported.step == 0 and original.step == 20
  for text in ("To be, or not", "ROMEO:"):
    assert exported.score([text])[0].log_prob == original.score([text])[0].log_prob


# Slow tier: translate and predict from a workdir are in test_translate_runs.py and
# test_finetune_runs.py; this adds that init_from reaches them and nothing is written.
@pytest.mark.slow
def test_translate_and_predict_from_init_from(tmp_path, seq2seq_run, classify_run, capsys):
  sentences = tmp_path / "in.txt"
  sentences.write_text("I am a student.\nThank you.\n", encoding="utf-8")
  cfg = tiny_config("seq2seq", **{"train.init_from": str(seq2seq_run),
                                  "decode.strategy": "greedy"})
  tasks.run(cfg, str(tmp_path / "t"), "translate", ModeInputs(input_path=str(sentences)))
  expected = tj.load(str(seq2seq_run)).translate(["I am a student.", "Thank you."],
                                                 strategy="greedy")
  assert capsys.readouterr().out.splitlines() == expected
  cfg = tiny_config("classify", **{"train.init_from": str(classify_run),
                                   "data.data_dir": str(SHARED_DATA)})
  tasks.run(cfg, str(tmp_path / "c"), "predict", ModeInputs(input_path=str(sentences)))
  lines = capsys.readouterr().out.splitlines()
  predicted = tj.load(str(classify_run)).classify(["I am a student.", "Thank you."])
  assert lines == [f"{label}\t{p[label]:.4f}" for label, p in predicted]
  assert not (tmp_path / "t").exists() and not (tmp_path / "c").exists()


def test_an_empty_workdir_without_init_from_says_what_to_do(tmp_path):
  result = run_launch("--config=configs/clm.py:tiny", f"--workdir={tmp_path / 'w'}",
                      "--mode=sample")
  assert result.returncode == 1 and TRACEBACK not in result.stderr
  assert last_line(result.stderr) == (
      f"error: {tmp_path / 'w'} has no vocabulary.json or tokenizer.json: train a model there "
      "first, or name trained weights with --config.train.init_from")
  assert not (tmp_path / "w").exists()


def test_the_exported_weights_equal_the_checkpoints(tmp_path, tiny_run):
  tasks.run(tiny_config(**{"train.init_from": str(tiny_run)}), str(tmp_path / "w"), "export",
            ModeInputs(output_path=str(tmp_path / "out")))
  from safetensors.numpy import load_file  # pylint: disable=import-outside-toplevel
  saved = load_file(str(tmp_path / "out" / "model.safetensors"))
  params = tj.load(str(tiny_run)).params
  np.testing.assert_array_equal(saved["block_1/mlp/input/kernel"],
                                np.asarray(params["block_1"]["mlp"]["input"]["kernel"]))
  assert json.loads((tmp_path / "out" / "config.json").read_text())["experiment"] == "clm"
