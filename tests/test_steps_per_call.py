"""`train.steps_per_call` (several optimizer steps scanned inside one jitted call) only
changes speed: the same batches, dropout keys and updates, step by step."""

import numpy as np
import pytest

from conftest import REFERENCE_FLAGS, by_step, run_launch

# Calls of 5 steps, losses logged every 5 steps (the mean over the call). A log line
# averages the steps this process ran since the previous line, so a resume at 15
# logs at 20 the same mean as the uninterrupted run.
GROUPED = tuple(f for f in REFERENCE_FLAGS if "log_every_steps" not in f) + (
    "--config.train.log_every_steps=5", "--config.train.steps_per_call=5")


@pytest.mark.slow  # Reads conftest.reference_run, which only the slow tier builds.
def test_grouped_steps_match_one_step_per_call(tmp_path, reference_run):
  workdir = tmp_path / "grouped"
  result = run_launch(*REFERENCE_FLAGS, "--config.train.steps_per_call=4",
                      f"--workdir={workdir}")
  assert result.returncode == 0, result.stderr[-3000:]
  for key in ("train_loss", "eval_loss"):
    expected, got = by_step(reference_run, key), by_step(workdir, key)
    assert sorted(got) == sorted(expected)
    # The scanned program may fuse differently from the single step: float tolerance.
    np.testing.assert_allclose([got[s] for s in sorted(got)],
                               [expected[s] for s in sorted(expected)], rtol=1e-5)


@pytest.mark.slow
def test_grouped_steps_resume_exactly(tmp_path):
  uninterrupted, resumed = tmp_path / "uninterrupted", tmp_path / "resumed"
  assert run_launch(*GROUPED, f"--workdir={uninterrupted}").returncode == 0
  # SIGTERM while the call for steps 10..14 is prepared: it runs, then a checkpoint at 15.
  stopped = run_launch(*GROUPED, f"--workdir={resumed}", signal_at_step=("SIGTERM", 13))
  assert "saved a checkpoint at step 15" in stopped.stderr, stopped.stderr[-2000:]
  assert run_launch(*GROUPED, f"--workdir={resumed}").returncode == 0
  for key in ("train_loss", "eval_loss"):
    assert by_step(resumed, key) == by_step(uninterrupted, key)  # Bit for bit.
