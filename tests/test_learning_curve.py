"""experiments/finetuning/learning_curve.py: steps per subset, and --plot_only's table and
picture from stored runs."""

import json
import subprocess
import sys

from conftest import REPO

SCRIPT = str(REPO / "experiments" / "finetuning" / "learning_curve.py")
sys.path.insert(0, str(REPO / "experiments" / "finetuning"))
import learning_curve  # pylint: disable=wrong-import-position


def test_a_subset_trains_its_share_of_the_rows_steps_at_least_the_minimum():
  assert learning_curve.steps("scratch", 0, 150) == 1200  # The whole split: the row's own.
  assert learning_curve.steps("scratch", 1000, 150) == 504  # 1200 · 1000 / 2381.
  assert learning_curve.steps("gpt-full", 1000, 150) == 252
  assert learning_curve.steps("gpt-lora", 100, 150) == 150  # 25 scaled, 150 at least.


def test_a_variant_is_a_row_of_its_own_with_its_own_workdirs():
  assert learning_curve.run_name("gpt-full", "") == "gpt-full"
  assert learning_curve.workdir("gpt-full", 100, 2) == "runs/learning_curve/gpt-full-n100-s2"
  name = learning_curve.run_name("gpt-full", "lr3e-4")
  assert name == "gpt-full/lr3e-4"
  assert learning_curve.workdir(name, 0, 1) == "runs/learning_curve/gpt-full-lr3e-4-n0-s1"


def _plot(tmp_path, results):
  stored = tmp_path / "results.jsonl"
  stored.write_text("".join(json.dumps(r) + "\n" for r in results))
  return subprocess.run([sys.executable, SCRIPT, "--plot_only", f"--results={stored}",
                         f"--picture={tmp_path / 'curve.png'}"], cwd=REPO,
                        capture_output=True, text=True, timeout=120, check=False)


def test_the_table_gives_mean_and_sample_std_per_size_and_the_picture_is_drawn(tmp_path):
  result = lambda row, size, seed, accuracy: {"row": row, "size": size, "seed": seed,
                                              "test_accuracy": accuracy}
  plotted = _plot(tmp_path, [result("scratch", 100, 1, 0.55), result("scratch", 100, 2, 0.57),
                             result("scratch", 0, 1, 0.79), result("gpt-full", 100, 1, 0.70)])
  assert plotted.returncode == 0, plotted.stderr
  lines = plotted.stdout.strip().splitlines()
  assert lines[:4] == ["| row | 100 sentences | 2,381 sentences |", "| --- | --- | --- |",
                       "| scratch | 0.560 ± 0.014 | 0.790 |", "| gpt-full | 0.700 |  |"]
  assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_results_yet_is_one_line(tmp_path):
  plotted = subprocess.run([sys.executable, SCRIPT, "--plot_only",
                            f"--results={tmp_path / 'none.jsonl'}"], cwd=REPO,
                           capture_output=True, text=True, timeout=60, check=False)
  assert plotted.returncode == 1
  assert plotted.stderr.strip().splitlines() == [
      f"error: no results in {tmp_path / 'none.jsonl'} yet; run the curve without "
      "--plot_only first"]
