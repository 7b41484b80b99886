"""One training run per workdir: a second is refused with one line naming the holder, a lock
whose process is gone is taken over, one from another host never is, read-only modes need none.
"""

import json
import logging
import re
import socket
import subprocess
import sys

import pytest

from conftest import REFERENCE_FLAGS, TRACEBACK, by_step, run_launch
from transformer_jax.errors import WorkdirLockedError
from transformer_jax.training.workdir_lock import FILE_NAME, WorkdirLock

STARTED = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"


def _gone_pid() -> int:
  """The pid of a process that has ended (and been reaped)."""
  child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                         capture_output=True, text=True, check=True, timeout=60)
  return int(child.stdout)


def _write_lock(workdir, **holder) -> str:
  text = json.dumps({"host": socket.gethostname(), "pid": 1,
                     "start_time": "2025-01-01T00:00:00+00:00", **holder})
  (workdir / FILE_NAME).write_text(text)
  return text


def test_a_held_lock_refuses_another_run_until_released(tmp_path):
  with WorkdirLock(str(tmp_path)):
    holder = json.loads((tmp_path / FILE_NAME).read_text())
    assert holder["host"] == socket.gethostname() and isinstance(holder["pid"], int)
    assert re.fullmatch(STARTED, holder["start_time"])
    with pytest.raises(WorkdirLockedError) as error:
      WorkdirLock(str(tmp_path)).acquire()
    assert str(error.value) == (
        f"workdir {tmp_path} is in use by another training run (host {holder['host']}, "
        f"pid {holder['pid']}, started {holder['start_time']}); wait for it to end or use "
        "another --workdir")
  assert not (tmp_path / FILE_NAME).exists()
  with WorkdirLock(str(tmp_path)):  # Free again.
    pass


def test_the_lock_is_released_when_the_run_fails(tmp_path):
  with pytest.raises(ZeroDivisionError):
    with WorkdirLock(str(tmp_path)):
      _ = 1 / 0
  assert not (tmp_path / FILE_NAME).exists()


def test_a_lock_whose_process_is_gone_is_taken_over_with_a_warning(tmp_path, caplog):
  pid = _gone_pid()
  _write_lock(tmp_path, pid=pid)
  with caplog.at_level(logging.WARNING):
    with WorkdirLock(str(tmp_path)):
      assert json.loads((tmp_path / FILE_NAME).read_text())["pid"] != pid
  assert [r.getMessage() for r in caplog.records] == [
      f"took over the lock of workdir {tmp_path} from a run that is gone (host "
      f"{socket.gethostname()}, pid {pid}, started 2025-01-01T00:00:00+00:00)"]


@pytest.mark.parametrize("holder, message", [
    ({"host": "elsewhere"}, "is locked by a training run on another host (host elsewhere, pid "
                            "{pid}, started 2025-01-01T00:00:00+00:00); if that run is over, "
                            "delete {path}"),
    ({"pid": "12"}, "has an unreadable lock file; if no training run uses it, delete {path}"),
], ids=["another_host", "unreadable"])
def test_a_lock_that_cannot_be_judged_is_never_taken_over(tmp_path, holder, message):
  pid = _gone_pid()  # Gone here; on another host it may well be running.
  text = _write_lock(tmp_path, **{"pid": pid, **holder})
  with pytest.raises(WorkdirLockedError) as error:
    WorkdirLock(str(tmp_path)).acquire()
  path = tmp_path / FILE_NAME
  assert str(error.value) == f"workdir {tmp_path} " + message.format(pid=pid, path=path)
  assert path.read_text() == text  # Untouched.


@pytest.mark.slow
def test_a_second_training_run_is_refused_and_eval_still_works(tmp_path, reference_run):
  """At step 25 of a run, a second training run on its workdir, then an evaluation."""
  workdir = tmp_path / "workdir"
  flags = REFERENCE_FLAGS + (f"--workdir={workdir}",)
  commands, results = tmp_path / "commands.json", tmp_path / "results.json"
  commands.write_text(json.dumps([list(flags), list(flags) + ["--mode=eval"]]))
  first = run_launch(*flags, during_training=(25, str(commands), str(results)), timeout=300)
  assert first.returncode == 0, first.stderr[-3000:]
  report = json.loads(results.read_text())
  second, evaluation = report["commands"]
  assert second["returncode"] == 1 and TRACEBACK not in second["stderr"]
  line = re.escape(f"error: workdir {workdir} is in use by another training run (host "
                   f"{socket.gethostname()}, pid {report['pid']}, started ")
  line += STARTED + re.escape("); wait for it to end or use another --workdir")
  assert re.fullmatch(line, second["stderr"].strip()), second["stderr"][-3000:]
  # Reading needs no lock: the latest finished checkpoint (10, or 20 if its write is done).
  assert evaluation["returncode"] == 0, evaluation["stderr"][-3000:]
  assert re.match(r"step (10|20) \| eval_loss ", evaluation["stdout"])
  # The first run went on as if alone: every loss as in the uninterrupted reference run.
  for key in ("train_loss", "eval_loss"):
    assert by_step(workdir, key) == by_step(reference_run, key), key
  assert not (workdir / FILE_NAME).exists()
