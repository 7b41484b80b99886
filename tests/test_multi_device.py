"""Data parallelism changes nothing but speed: 1 == 2 == 4 emulated CPU devices.

The loss is a mean over the global batch whatever the split, and dropout keys do
not depend on the layout, so the logged losses agree up to float reassociation.
These runs double as the regression test for a rendezvous deadlock: several CPU
devices on a 2-core machine have hung XLA collectives before, so every run must
finish within a timeout (subprocess.TimeoutExpired fails the test). 40 steps with
an evaluation every 10 give a hang many chances to show.
"""

import json

import numpy as np
import pytest

from conftest import REFERENCE_FLAGS, by_step, last_line, run_launch

TIMEOUT_SECONDS = 120


def _mesh_shapes(workdir) -> set[tuple[int, ...]]:
  """Device-mesh shapes recorded in the final checkpoint (orbax's `_sharding` file)."""
  entries = json.loads((workdir / "checkpoints" / "40" / "state" / "_sharding").read_text())
  return {tuple(json.loads(entry)["shape"]) for entry in entries.values()}


@pytest.mark.slow
@pytest.mark.parametrize("devices", [2, 4])
def test_devices_match_one_device(tmp_path, reference_run, devices):
  workdir = tmp_path / "workdir"
  result = run_launch(*REFERENCE_FLAGS, f"--workdir={workdir}", devices=devices,
                      timeout=TIMEOUT_SECONDS)
  assert result.returncode == 0, result.stderr[-3000:]
  for key in ("train_loss", "eval_loss"):
    expected = by_step(reference_run, key)
    actual = by_step(workdir, key)
    assert sorted(actual) == sorted(expected), key
    steps = sorted(expected)
    np.testing.assert_allclose([actual[s] for s in steps], [expected[s] for s in steps],
                               rtol=1e-5, err_msg=key)
  assert len(by_step(workdir, "train_loss")) == 40
  # The run really was data-parallel over `devices`, and the reference was not
  # (mesh data x fsdp x tensor).
  assert _mesh_shapes(workdir) == {(devices, 1, 1)}
  assert _mesh_shapes(reference_run) == {(1, 1, 1)}


def test_batch_size_not_divisible_by_devices_is_one_line(tmp_path):
  result = run_launch("--config=configs/clm.py:tiny", "--config.train.batch_size=6",
                      f"--workdir={tmp_path / 'workdir'}", devices=4, timeout=TIMEOUT_SECONDS)
  assert result.returncode != 0
  assert result.stderr.strip() == last_line(result.stderr) == (
      "error: config.train.batch_size: 6 is not divisible by the 4 data-parallel devices")
  assert not (tmp_path / "workdir" / "checkpoints").exists()


@pytest.mark.slow
def test_flat_gradient_all_reduce_gives_the_one_device_losses(tmp_path, tiny_run):
  """Per-device gradients summed in one flat buffer (shard_map), micro-batched too."""
  workdir = tmp_path / "workdir"
  result = run_launch("--config=configs/clm.py:tiny", f"--workdir={workdir}",
                      "--config.train.flat_gradient_all_reduce=true",
                      "--config.train.microbatches=2", devices=2, timeout=TIMEOUT_SECONDS)
  assert result.returncode == 0, result.stderr[-3000:]
  for key in ("train_loss", "eval_loss"):
    expected, actual = by_step(tiny_run, key), by_step(workdir, key)
    assert sorted(actual) == sorted(expected), key
    np.testing.assert_allclose([actual[s] for s in sorted(expected)],
                               [expected[s] for s in sorted(expected)], rtol=1e-5, err_msg=key)


def test_flat_gradient_all_reduce_is_for_pure_data_parallelism(tmp_path):
  result = run_launch("--config=configs/clm.py:tiny", f"--workdir={tmp_path / 'w'}",
                      "--config.train.flat_gradient_all_reduce=true",
                      "--config.mesh.fsdp_axis_size=2", devices=2, timeout=TIMEOUT_SECONDS)
  assert result.returncode != 0
  assert last_line(result.stderr) == (
      "error: config.train.flat_gradient_all_reduce: is for pure data parallelism; set "
      "mesh.fsdp_axis_size and mesh.tensor_axis_size to 1")
  assert not (tmp_path / "w").exists()
