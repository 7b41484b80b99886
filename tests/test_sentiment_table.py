"""experiments/finetuning/sentiment_table.py --table_only: the results table from stored runs."""

import json
import subprocess
import sys

from conftest import REPO

SCRIPT = str(REPO / "experiments" / "finetuning" / "sentiment_table.py")


def _result(row, seed, accuracy, seconds):
  return {"row": row, "seed": seed, "seconds": seconds, "checkpoint_bytes": 2 * 2**20,
          "trainable": 50, "parameters": 200, "test_accuracy": accuracy,
          "test_macro_f1": accuracy - 0.01, "eval_accuracy": accuracy + 0.1}


def _table(*flags):
  return subprocess.run([sys.executable, SCRIPT, "--table_only", *flags], cwd=REPO,
                        capture_output=True, text=True, timeout=60, check=False)


def test_rows_give_mean_and_sample_std_over_seeds_and_the_fastest_time(tmp_path):
  results = tmp_path / "results.jsonl"
  results.write_text("".join(json.dumps(r) + "\n" for r in (
      _result("bert-full/mean", 1, 0.80, 100.0),
      _result("bert-full", 1, 0.75, 400.0), _result("bert-lora", 1, 0.70, 90.0),
      _result("bert-full", 2, 0.77, 300.0), _result("gpt-full", 1, 0.5, 1.0))))
  table = _table(f"--results={results}", "--rows=bert-full,bert-lora")
  assert table.returncode == 0, table.stderr
  lines = table.stdout.strip().splitlines()
  # Sample std of 0.75 and 0.77: 0.01414; one seed: the value alone; unlisted rows left out;
  # a variant (--variant) right after its row.
  assert lines[2:] == [
      "| bert-full | 0.760 ± 0.014 | 0.750 ± 0.014 | 0.860 ± 0.014 | 50 (25.00%) | 2.00 MiB "
      "| 300 s |",
      "| bert-full/mean | 0.800 | 0.790 | 0.900 | 50 (25.00%) | 2.00 MiB | 100 s |",
      "| bert-lora | 0.700 | 0.690 | 0.800 | 50 (25.00%) | 2.00 MiB | 90 s |"]


def test_no_results_yet_is_one_line(tmp_path):
  table = _table(f"--results={tmp_path / 'none.jsonl'}")
  assert table.returncode == 1
  assert table.stderr.strip().splitlines() == [
      f"error: no results in {tmp_path / 'none.jsonl'} yet; run the table without "
      "--table_only first"]
