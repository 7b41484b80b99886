"""Two processes on loopback (jax.distributed, gloo): one run, the single-process losses.

Each process is launch.py with --coordinator_address, --num_processes and --process_id,
one CPU device each, sharing a workdir. Every run is under a timeout: several CPU
processes or devices have hung XLA's collectives before.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REFERENCE_FLAGS, REPO, TEST_XLA_FLAGS, by_step, last_line
from transformer_jax.training.metrics_writer import read_metrics

pytestmark = pytest.mark.slow  # Several devices or processes: see setup.cfg's markers.

TIMEOUT_SECONDS = 240
DEATH_BOUND_SECONDS = 30  # A survivor must be gone this long after its peer died.


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _start(workdir, *flags, processes=2):
  env = dict(os.environ,
             XLA_FLAGS=f"--xla_force_host_platform_device_count=1 {TEST_XLA_FLAGS}",
             JAX_PLATFORMS="cpu")
  address = f"127.0.0.1:{_free_port()}"
  return [subprocess.Popen(
      [sys.executable, str(REPO / "launch.py"), *flags, f"--workdir={workdir}",
       f"--coordinator_address={address}", f"--num_processes={processes}",
       f"--process_id={index}", "--heartbeat_timeout_seconds=20"],
      cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
          for index in range(processes)]


def _finish(processes):
  results = []
  try:
    for process in processes:
      stdout, stderr = process.communicate(timeout=TIMEOUT_SECONDS)
      results.append((process.returncode, stdout, stderr))
  finally:
    for process in processes:
      process.kill()
  return results


def test_two_processes_give_the_single_process_run_and_resume_exactly(tmp_path, reference_run):
  whole = tmp_path / "whole"
  results = _finish(_start(whole, *REFERENCE_FLAGS))
  for returncode, _, stderr in results:
    assert returncode == 0, stderr[-3000:]
  for key in ("train_loss", "eval_loss"):
    expected, actual = by_step(reference_run, key), by_step(whole, key)
    assert sorted(actual) == sorted(expected), key
    np.testing.assert_allclose([actual[s] for s in sorted(expected)],
                               [expected[s] for s in sorted(expected)], rtol=1e-5, err_msg=key)
  # One writer: each step's record appears once, and only process 0 logs.
  assert len([r for r in read_metrics(str(whole)) if "train_loss" in r]) == 40
  assert "trainable parameters" in results[0][2] and "trainable parameters" not in results[1][2]

  # Stopped at step 20 and run again: both processes resume from their checkpoint.
  resumed = tmp_path / "resumed"
  flags = [f for f in REFERENCE_FLAGS if not f.startswith("--config.train.num_steps")]
  for steps in (20, 40):
    for returncode, _, stderr in _finish(_start(resumed, *flags,
                                                f"--config.train.num_steps={steps}",
                                                "--config.train.decay_steps=40")):
      assert returncode == 0, stderr[-3000:]
  for key in ("train_loss", "eval_loss"):
    assert by_step(resumed, key) == by_step(whole, key), key  # Exact, bit for bit.


def test_when_one_process_dies_the_other_stops_with_one_line(tmp_path):
  workdir = tmp_path / "w"
  processes = _start(workdir, "--config=configs/clm.py:tiny", "--config.train.num_steps=100000",
                     "--config.train.log_every_steps=10", "--config.decode.max_new_tokens=0")
  try:
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while not (workdir / "metrics.jsonl").exists() or not read_metrics(str(workdir)):
      assert time.monotonic() < deadline and processes[0].poll() is None, "did not start"
      time.sleep(0.5)
    processes[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    _, stderr = processes[0].communicate(timeout=DEATH_BOUND_SECONDS)
    assert time.monotonic() - killed < DEATH_BOUND_SECONDS
  finally:
    for process in processes:
      process.kill()
  assert processes[0].returncode == 1
  line = last_line(stderr)
  assert line.startswith("error: process 0 of 2: another process died or stopped answering ("), \
      stderr[-3000:]
  assert line.endswith("re-run every process to resume from the last checkpoint")
  assert "Traceback" not in stderr
