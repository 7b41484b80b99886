"""launch.py end to end for the encoder (configs/mlm.py) and encoder-decoder
(configs/seq2seq.py) families on their tiny presets: training lowers the loss,
metrics carry the family's names, --mode=eval reproduces the final evaluation."""

import pytest

from conftest import TRACEBACK, by_step, copy_workdir, last_line, run_launch
from transformer_jax.run.modes import ModeInputs
from transformer_jax.training.metrics_writer import read_metrics

FAMILIES = {
    "mlm": ("--config=configs/mlm.py:tiny",
            {"eval_loss", "eval_mlm_loss", "eval_mlm_perplexity", "eval_mlm_accuracy",
             "eval_mlm_tokens", "eval_nsp_loss", "eval_nsp_accuracy", "eval_nsp_examples"}),
    # eval_validation_bleu: the tiny preset's eval.bleu_pairs=8 decoded validation pairs.
    "seq2seq": ("--config=configs/seq2seq.py:tiny",
                {"eval_loss", "eval_perplexity", "eval_token_accuracy", "eval_tokens",
                 "eval_validation_bleu"}),
}

EVAL_MODE_EXTRA_KEYS = {"mlm": set(), "seq2seq": {"eval_bleu"}}


# BERT's char-vocabulary run in the slow tier: the default tier trains configs/mlm.py:tiny
# from launch.py as conftest.mlm_base (a byte-level BPE) for the fine-tuning tests.
@pytest.fixture(scope="module", params=[pytest.param("mlm", marks=pytest.mark.slow), "seq2seq"])
def family_run(request):
  """The session's run of the family's tiny preset (conftest.py; read-only)."""
  name = request.param
  return name, request.getfixturevalue({"mlm": "mlm_tiny_run", "seq2seq": "seq2seq_run"}[name])


def test_tiny_preset_trains_and_reports_its_metrics(family_run):
  name, workdir = family_run
  train_loss = by_step(workdir, "train_loss")
  assert sorted(train_loss) == [5, 10, 15, 20, 25, 30]
  assert train_loss[30] < train_loss[5]
  evals = [r for r in read_metrics(str(workdir)) if "eval_loss" in r]
  assert [r["step"] for r in evals] == [15, 30]
  assert all(set(r) == FAMILIES[name][1] | {"step"} for r in evals)
  assert evals[-1]["eval_loss"] < evals[0]["eval_loss"]


def test_eval_mode_reproduces_the_final_evaluation(family_run, tmp_path, request):
  name, shared = family_run
  if name == "seq2seq":  # The session's --mode=eval of a copy (conftest.seq2seq_evaluated).
    workdir, result, final = request.getfixturevalue("seq2seq_evaluated")
  else:
    workdir = copy_workdir(shared, tmp_path / "workdir")
    final = [r for r in read_metrics(str(workdir)) if "eval_loss" in r][-1]
    result = run_launch(FAMILIES[name][0], f"--workdir={workdir}", "--mode=eval")
    assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.startswith(f"step 30 | eval_loss {final['eval_loss']:.4f} | ")
  record = read_metrics(str(workdir))[-1]
  # seq2seq's --mode=eval adds the test split's BLEU (see test_translate_runs.py).
  assert set(record) - set(final) == EVAL_MODE_EXTRA_KEYS[name]
  assert {key: record[key] for key in final} == final


def test_mlm_has_no_sample_mode(tmp_path):
  result = run_launch(FAMILIES["mlm"][0], f"--workdir={tmp_path / 'w'}", "--mode=sample")
  assert result.returncode == 1 and TRACEBACK not in result.stderr
  assert last_line(result.stderr) == (
      "error: --mode=sample is not available for experiment mlm: use train, eval, attention or "
      "export")


def test_mlm_attention_maps_and_bert_export(family_run, tmp_path):
  name, workdir = family_run
  if name != "mlm":
    pytest.skip("BERT's modes")
  import json  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from conftest import tiny_config  # pylint: disable=import-outside-toplevel
  from transformer_jax.run import export  # pylint: disable=import-outside-toplevel
  from transformer_jax.tasks import mlm  # pylint: disable=import-outside-toplevel
  cfg = tiny_config("mlm")
  text = "To be, or not"  # Characters: <cls> + 13 + <sep>.
  paths = mlm.attention(cfg, str(workdir), ModeInputs(input_path=text,
                                                           output_path=str(tmp_path / "maps")))
  assert len(paths) == 2  # One PNG per layer.
  weights = np.load(tmp_path / "maps" / "self_attention.npy")
  assert weights.shape == (2, 2, len(text) + 2, len(text) + 2)
  np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
  export.export(mlm.build_task(cfg, str(workdir), need_data=False),
                ModeInputs(output_path=str(tmp_path / "hf"), format="hf"))
  config = json.loads((tmp_path / "hf" / "config.json").read_text())
  assert (config["model_type"], config["num_hidden_layers"]) == ("bert", 2)


def test_seq2seq_refuses_a_corpus_without_targets(tmp_path):
  text = tmp_path / "plain.txt"
  text.write_text("no tabs here\n", encoding="utf-8")
  result = run_launch(FAMILIES["seq2seq"][0], f"--workdir={tmp_path / 'w'}",
                      f"--config.data.path={text}", "--config.data.format=text")
  assert result.returncode == 1 and TRACEBACK not in result.stderr
  assert "seq2seq needs a parallel corpus" in last_line(result.stderr)
  assert not (tmp_path / "w").exists()
