"""One training run per workdir: a lock file naming the run's host, PID and start time.

A training run creates `<workdir>/training.lock` (atomically: O_CREAT|O_EXCL) before
it writes anything there, and removes it when it ends, also on an error, SIGINT or
SIGTERM. A second run on the same workdir stops with one line naming the holder.
A lock whose holder is gone (this host, its PID no longer running: a run killed with
SIGKILL or by the OOM killer) is taken over with a warning. A lock written on another
host is never taken over, as its PID means nothing here: the message names the file
to delete once that run is over. Modes that only read a workdir take no lock.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket
import time
from typing import Any, Iterator, Optional

from absl import logging

from transformer_jax.errors import WorkdirLockedError

FILE_NAME = "training.lock"
# A run writes its lock right after creating it; a reader that finds it empty waits this long.
_WRITE_GRACE_SECONDS = 1.0
_ATTEMPTS = 3  # Lock vanished or taken over meanwhile: look again, a few times.


def _describe(holder: dict[str, Any]) -> str:
  """'host h, pid 12, started 2025-01-01T00:00:00+00:00', on one line whatever the file says."""
  text = (f"host {holder.get('host')}, pid {holder.get('pid')}, "
          f"started {holder.get('start_time')}")
  return " ".join(text.split())[:300]


def _pid_running(pid: int) -> bool:
  try:
    os.kill(pid, 0)  # Signal 0: only checks that the process exists.
  except ProcessLookupError:
    return False
  except PermissionError:  # It exists, under another user.
    return True
  return True


@contextlib.contextmanager
def _takeover_mutex(workdir: str) -> Iterator[None]:
  """Serialises takeovers on this host (flock of the workdir itself): two runs that both
  find the same stale lock must not both remove it, one after the other's new lock."""
  descriptor = os.open(workdir, os.O_RDONLY)
  try:
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    yield
  finally:
    os.close(descriptor)  # Also releases the flock.


class WorkdirLock:
  """`with WorkdirLock(workdir):` holds the workdir's training lock (a no-op if not enabled,
  e.g. on processes > 0 of a multi-host run, whose process 0 holds it)."""

  def __init__(self, workdir: str, enabled: bool = True):
    self.workdir = workdir
    self.path = os.path.join(workdir, FILE_NAME)
    self.enabled = enabled
    self._content: Optional[str] = None  # What this run wrote, once it holds the lock.

  def __enter__(self) -> WorkdirLock:
    if self.enabled:
      self.acquire()
    return self

  def __exit__(self, *exc_info) -> None:
    self.release()

  def acquire(self) -> None:
    """Takes the lock, or a stale one; raises WorkdirLockedError if a live run holds it."""
    stale = None
    for _ in range(_ATTEMPTS):
      held, text = self._create()
      if held:
        if stale is not None:
          logging.warning("took over the lock of workdir %s from a run that is gone (%s)",
                          self.workdir, _describe(stale))
        return
      if text is None:  # Released between our attempt and our read: try again.
        continue
      holder = self._parse(text)
      if holder["host"] != socket.gethostname():
        raise WorkdirLockedError(
            f"workdir {self.workdir} is locked by a training run on another host "
            f"({_describe(holder)}); if that run is over, delete {self.path}")
      if _pid_running(holder["pid"]):
        raise WorkdirLockedError(
            f"workdir {self.workdir} is in use by another training run ({_describe(holder)}); "
            "wait for it to end or use another --workdir")
      with _takeover_mutex(self.workdir):
        if self._read() == text:  # Still the stale lock, not a newer run's.
          os.remove(self.path)
      stale = holder
    raise WorkdirLockedError(f"workdir {self.workdir}: {self.path} keeps changing hands; "
                             "is another training run starting there?")

  def release(self) -> None:
    """Removes the lock if this run holds it (and it is still this run's)."""
    if self._content is not None and self._read() == self._content:
      os.remove(self.path)
    self._content = None

  def _create(self) -> tuple[bool, Optional[str]]:
    """(True, None) once this run holds the lock, else (False, the holder's lock text, or
    None if the lock vanished before it could be read)."""
    content = json.dumps({
        "host": socket.gethostname(), "pid": os.getpid(),
        "start_time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
    try:
      descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      return False, self._read_written()
    with os.fdopen(descriptor, "w", encoding="utf-8") as f:
      f.write(content)
      f.flush()
      os.fsync(f.fileno())
    self._content = content
    return True, None

  def _read(self) -> Optional[str]:
    try:
      with open(self.path, encoding="utf-8", errors="replace") as f:
        return f.read()
    except FileNotFoundError:
      return None

  def _read_written(self) -> Optional[str]:
    """The holder's text (None if gone), waiting briefly for a lock created but not yet
    written."""
    deadline = time.monotonic() + _WRITE_GRACE_SECONDS
    while True:
      text = self._read()
      if text is None or text.strip() or time.monotonic() > deadline:
        return text
      time.sleep(0.05)

  def _parse(self, text: str) -> dict[str, Any]:
    try:
      holder = json.loads(text)
      if (isinstance(holder, dict) and isinstance(holder.get("host"), str)
          and isinstance(holder.get("pid"), int) and holder["pid"] > 0):
        return holder
    except ValueError:
      pass
    raise WorkdirLockedError(f"workdir {self.workdir} has an unreadable lock file; if no "
                             f"training run uses it, delete {self.path}")
