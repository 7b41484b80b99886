"""A run that is stopped and resumed logs exactly what an uninterrupted run logs.

Batches and dropout keys are pure functions of (seed, step) and the optimizer
state is checkpointed, so after a resume every loss must match bit for bit.
The uninterrupted run is the session's `reference_run` (REFERENCE_FLAGS: 40
steps, every step logged, evaluation and checkpoint every 10 steps).
"""

import os

import pytest

from conftest import REFERENCE_FLAGS, TRACEBACK, by_step, run_launch
from transformer_jax.training.metrics_writer import read_metrics

pytestmark = pytest.mark.slow  # Long resume runs: see setup.cfg's markers.


def _assert_same_metrics(resumed, uninterrupted):
  for key in ("train_loss", "learning_rate", "eval_loss", "eval_token_accuracy"):
    expected = by_step(uninterrupted, key)
    assert expected, key
    assert by_step(resumed, key) == expected, key  # Exact: bit for bit.


def test_sigterm_saves_a_checkpoint_and_the_rerun_matches(tmp_path, reference_run):
  workdir = tmp_path / "workdir"
  flags = REFERENCE_FLAGS + (f"--workdir={workdir}",)

  stopped = run_launch(*flags, signal_at_step=("SIGTERM", 13))
  assert stopped.returncode == 0, stopped.stderr[-3000:]
  assert "SIGTERM received: saved a checkpoint at step 14" in stopped.stderr
  assert TRACEBACK not in stopped.stderr
  # The loop finished step 14 (the batch of step 13), checkpointed it and stopped.
  assert sorted(os.listdir(workdir / "checkpoints")) == ["10", "14"]
  assert max(r["step"] for r in read_metrics(str(workdir))) == 14

  resumed = run_launch(*flags)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "resumed from" in resumed.stderr and "at step 14" in resumed.stderr
  # Steps 1..14 were logged once; the rerun logs 15..40 only.
  train_steps = [r["step"] for r in read_metrics(str(workdir)) if "train_loss" in r]
  assert train_steps == list(range(1, 41))
  _assert_same_metrics(workdir, reference_run)


# SIGKILL at step 20: just after checkpoint 20 began its async save, which is likely
# left half-written (`20.orbax-checkpoint-tmp`). At step 31: orbax finished 20 before
# starting 30, so 20 is committed and 30 is in flight.
@pytest.mark.parametrize("kill_at_step, committed_at_least", [(20, 10), (31, 20)])
def test_sigkill_then_rerun_matches(tmp_path, reference_run, kill_at_step, committed_at_least):
  workdir = tmp_path / "workdir"
  flags = REFERENCE_FLAGS + (f"--workdir={workdir}",)

  killed = run_launch(*flags, signal_at_step=("SIGKILL", kill_at_step))
  assert killed.returncode == -9
  assert max(r["step"] for r in read_metrics(str(workdir))) == kill_at_step
  committed = max(int(name) for name in os.listdir(workdir / "checkpoints") if name.isdigit())
  assert committed >= committed_at_least

  resumed = run_launch(*flags)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  # The newest committed checkpoint, not a half-written one and not an older one.
  assert f"resumed from {workdir / 'checkpoints'} at step {committed}" in resumed.stderr
  assert TRACEBACK not in resumed.stderr
  # Steps after the restored checkpoint are logged twice; the last record of each counts.
  _assert_same_metrics(workdir, reference_run)
  assert sorted(os.listdir(workdir / "checkpoints")) == ["20", "30", "40"]  # keep 3.
