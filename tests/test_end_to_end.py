"""launch.py end to end on the tiny preset: train, then eval and sample the same workdir.

The training run is the session's `tiny_run` (20 steps, log every 5, evaluate and
checkpoint every 10, a 32-character sample at the end).
"""

import json
import math

from conftest import TRACEBACK, copy_workdir, run_launch
from transformer_jax.training.metrics_writer import read_metrics

TINY = "--config=configs/clm.py:tiny"
TRAIN_KEYS = {"step", "train_loss", "train_grad_norm", "learning_rate", "tokens_per_second",
              "input_milliseconds_per_step"}
EVAL_KEYS = {"step", "eval_loss", "eval_perplexity", "eval_token_accuracy", "eval_tokens"}


def test_training_writes_metrics(tiny_run):
  records = read_metrics(str(tiny_run))
  train = [r for r in records if "train_loss" in r]
  evals = [r for r in records if "eval_loss" in r]
  assert len(train) + len(evals) == len(records)
  assert all(set(r) == TRAIN_KEYS for r in train)
  assert all(set(r) == EVAL_KEYS for r in evals)
  assert [r["step"] for r in train] == [5, 10, 15, 20]
  assert [r["step"] for r in evals] == [10, 20]
  assert all(r["tokens_per_second"] > 0 and r["learning_rate"] > 0 for r in train)
  for r in evals:
    assert math.isclose(r["eval_perplexity"], math.exp(r["eval_loss"]), rel_tol=1e-5)
    assert r["eval_tokens"] == 2 * 8 * 32  # eval.num_batches * batch_size * max_length.
  assert train[-1]["train_loss"] < train[0]["train_loss"]
  assert evals[-1]["eval_loss"] < evals[0]["eval_loss"]


def test_training_writes_workdir_files(tiny_run):
  config = json.loads((tiny_run / "config.json").read_text())
  assert config["model"]["num_layers"] == 2 and config["train"]["num_steps"] == 20
  characters = json.loads((tiny_run / "vocabulary.json").read_text())["characters"]
  assert len(characters) == 65 == config["model"]["vocab_size"]  # Tiny Shakespeare.
  samples = (tiny_run / "samples.txt").read_text()
  assert samples.startswith("===== step 20 =====\n")
  assert list((tiny_run / "tensorboard").glob("events.out.tfevents.*"))
  assert sorted(p.name for p in (tiny_run / "checkpoints").iterdir()) == ["10", "20"]


def test_eval_mode_reproduces_the_final_evaluation(tmp_path, tiny_run):
  workdir = copy_workdir(tiny_run, tmp_path / "workdir")
  final_eval = [r for r in read_metrics(str(workdir)) if "eval_loss" in r][-1]
  result = run_launch(TINY, f"--workdir={workdir}", "--mode=eval")
  assert result.returncode == 0, result.stderr[-3000:]
  assert TRACEBACK not in result.stderr
  assert result.stdout.startswith(f"step 20 | eval_loss {final_eval['eval_loss']:.4f} | ")
  # Same checkpoint, same validation windows: the same numbers, appended to metrics.jsonl.
  assert read_metrics(str(workdir))[-1] == final_eval


def test_sample_mode_continues_the_prompt(tmp_path, tiny_run):
  workdir = copy_workdir(tiny_run, tmp_path / "workdir")
  result = run_launch(TINY, f"--workdir={workdir}", "--mode=sample", "--prompt=ROMEO:")
  assert result.returncode == 0, result.stderr[-3000:]
  assert TRACEBACK not in result.stderr
  assert result.stdout.startswith("ROMEO:")
  text = result.stdout[:-1]  # print() adds one newline.
  assert len(text) == len("ROMEO:") + 32  # decode.max_new_tokens of the tiny preset.
  assert (workdir / "samples.txt").read_text().endswith(f"===== step 20 =====\n{text}\n")
