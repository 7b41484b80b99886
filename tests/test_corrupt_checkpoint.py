"""Damaged or foreign checkpoints: fall back without deleting anything, or stop untouched.

Starts from a copy of the session's `tiny_run` (checkpoints at steps 10 and 20).
"""

import os
import re
import shutil

import pytest

from conftest import copy_workdir, last_line, run_launch
from transformer_jax.training.metrics_writer import read_metrics

TINY = "--config=configs/clm.py:tiny"


def _delete_state(checkpoint):
  shutil.rmtree(checkpoint / "state")


def _truncate_arrays(checkpoint):
  # The array chunks, not the JSON beside them: tensorstore fails, not a JSON parser.
  chunks = [p for p in (checkpoint / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
  assert chunks
  for path in chunks:
    path.write_bytes(b"")


def _snapshot(workdir) -> dict[str, tuple[int, bytes]]:
  """Every file under workdir: relative path -> (mtime in ns, bytes)."""
  return {str(p.relative_to(workdir)): (p.stat().st_mtime_ns, p.read_bytes())
          for p in sorted(workdir.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("corrupt", [_delete_state, _truncate_arrays],
                         ids=["deleted_state", "truncated_arrays"])
def test_unreadable_latest_checkpoint_is_moved_aside(tmp_path, tiny_run, corrupt):
  workdir = copy_workdir(tiny_run, tmp_path / "workdir")
  corrupt(workdir / "checkpoints" / "20")
  damaged = _snapshot(workdir / "checkpoints" / "20")
  eval_at_10 = [r for r in read_metrics(str(workdir)) if "eval_loss" in r][0]
  assert eval_at_10["step"] == 10

  result = run_launch(TINY, f"--workdir={workdir}", "--mode=eval")
  assert result.returncode == 0, result.stderr[-3000:]
  # Searched in all of stderr, not line by line: when array reads fail, orbax's threads
  # print tracebacks ("Event loop is closed") that can run into the warning's line.
  warnings = re.findall(r"checkpoint 20 in \S+ is unreadable \(.*?\); moved it to (\S+) ",
                        result.stderr)
  assert warnings == [str(workdir / "checkpoints_unreadable" / "20")], result.stderr[-3000:]
  # Moved, not deleted: the same files, now out of the way.
  assert sorted(os.listdir(workdir / "checkpoints")) == ["10"]
  assert _snapshot(workdir / "checkpoints_unreadable" / "20") == damaged
  # Step 10 was restored: its evaluation is reproduced exactly.
  assert result.stdout.startswith("step 10 | ")
  assert read_metrics(str(workdir))[-1] == eval_at_10


def test_other_model_shape_stops_and_changes_nothing(tmp_path, tiny_run):
  workdir = copy_workdir(tiny_run, tmp_path / "workdir")
  before = _snapshot(workdir)
  result = run_launch(TINY, f"--workdir={workdir}", "--config.model.num_layers=3")
  assert result.returncode != 0
  line = last_line(result.stderr)
  assert line.startswith("error: ") and "model.num_layers=2 in the checkpoint but 3" in line
  assert [l for l in result.stderr.splitlines() if l.strip()] == [line], result.stderr[-3000:]
  # Checkpoints, metrics.jsonl, config.json...: every byte and every mtime as before.
  assert _snapshot(workdir) == before
