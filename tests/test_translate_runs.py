"""launch.py end to end for decoding: seq2seq --mode=translate and the test BLEU of
--mode=eval on configs/seq2seq.py:tiny, and clm --mode=sample --prompts_file."""

import json
import pytest

from conftest import TRACEBACK, copy_workdir, last_line, run_launch
from transformer_jax.training.metrics_writer import read_metrics

TINY = "--config=configs/seq2seq.py:tiny"
SENTENCES = ["I am a student.", "Where is the station?", "Thank you."]


def test_translate_writes_one_line_per_sentence_to_stdout(seq2seq_run, tmp_path):
  source = tmp_path / "in.txt"
  source.write_text("".join(f"{s}\n" for s in SENTENCES), encoding="utf-8")
  result = run_launch(TINY, f"--workdir={seq2seq_run}", "--mode=translate", f"--input={source}",
                      "--config.decode.strategy=greedy")
  assert result.returncode == 0, result.stderr[-3000:]
  assert len(result.stdout.split("\n")) == len(SENTENCES) + 1  # Each line ends in "\n".
  stdout = result.stdout
  output = tmp_path / "out.txt"
  result = run_launch(TINY, f"--workdir={seq2seq_run}", "--mode=translate", f"--input={source}",
                      "--config.decode.strategy=greedy", f"--output={output}")
  assert result.returncode == 0 and result.stdout == ""
  assert output.read_text(encoding="utf-8") == stdout


@pytest.mark.slow  # A long end-to-end launch.py run: see setup.cfg's markers.
def test_attention_maps_of_a_translation(seq2seq_run, tmp_path):
  import numpy as np  # pylint: disable=import-outside-toplevel
  result = run_launch(TINY, f"--workdir={seq2seq_run}", "--mode=attention",
                      "--input=I am a student.", f"--output={tmp_path / 'maps'}",
                      "--config.decode.strategy=greedy")
  assert result.returncode == 0, result.stderr[-3000:]
  layers = 2  # configs/seq2seq.py:tiny: 2 encoder and 2 decoder layers of 2 heads.
  for name in ("encoder_self_attention", "decoder_self_attention", "cross_attention"):
    assert sorted(p.name for p in (tmp_path / "maps").glob(f"{name}_layer_*.png")) == [
        f"{name}_layer_{layer}.png" for layer in range(layers)]
  cross = np.load(tmp_path / "maps" / "cross_attention.npy")
  encoder = np.load(tmp_path / "maps" / "encoder_self_attention.npy")
  assert cross.shape[:2] == (layers, 2) and cross.shape[3] == encoder.shape[3]
  np.testing.assert_allclose(cross.sum(-1), 1.0, rtol=1e-5)


def test_missing_input_file_is_one_line_error(seq2seq_run, tmp_path):
  missing = tmp_path / "nowhere.txt"
  result = run_launch(TINY, f"--workdir={seq2seq_run}", "--mode=translate", f"--input={missing}")
  assert result.returncode == 1 and TRACEBACK not in result.stderr
  assert last_line(result.stderr) == f"error: --input: file not found: {missing}"


def test_eval_reports_test_bleu_and_writes_the_translations(seq2seq_evaluated):
  workdir, result, _ = seq2seq_evaluated  # --mode=eval of a copy of the tiny run.
  record = read_metrics(str(workdir))[-1]
  assert record["step"] == 30 and 0 <= record["eval_bleu"] <= 100
  assert "| eval_bleu " in result.stdout
  lines = (workdir / "translations_test_step30.txt").read_text(encoding="utf-8").split("\n")
  config = json.loads((workdir / "config.json").read_text(encoding="utf-8"))
  assert config["decode"]["strategy"] == "beam"
  assert len(lines) > 1 and lines[-1] == ""  # One hypothesis a line, one per test pair.


def test_clm_prompts_file_continues_every_prompt(tiny_run, tmp_path):
  workdir = copy_workdir(tiny_run, tmp_path / "workdir")
  prompts = tmp_path / "prompts.txt"
  prompts.write_text("ROMEO:\nTo be\nA\n", encoding="utf-8")
  result = run_launch("--config=configs/clm.py:tiny", f"--workdir={workdir}", "--mode=sample",
                      f"--prompts_file={prompts}", "--config.decode.max_new_tokens=5")
  assert result.returncode == 0, result.stderr[-3000:]
  for number, prompt in enumerate(["ROMEO:", "To be", "A"], start=1):
    assert f"===== prompt {number} =====\n{prompt}" in result.stdout
