"""Orbax checkpoints of the train state, with the metadata needed to trust a resume.

Each checkpoint holds two items: 'state' (step, params, optimizer state; restored
straight into the mesh's shardings) and 'metadata' (JSON: the model config and
vocabulary size). Before restoring, the metadata is compared with the current
config, so a run with another model shape stops with one clear line instead of
overwriting anything. A latest checkpoint that cannot be read is moved aside to
`checkpoints_unreadable/` (never deleted) and the previous one is used.

Orbax writes a checkpoint into `<step>.orbax-checkpoint-tmp` and renames it when
complete, and removes old checkpoints (keep-N) only after that: a write that
fails (disk full, permission denied) leaves the previous checkpoints as they
were, and ends the run with a `CheckpointWriteError` naming the directory and
the system's error, whether it fails at once or in the background.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from typing import Any, Iterator, Optional

import orbax.checkpoint as ocp
from absl import logging

from transformer_jax.errors import CheckpointMismatchError, CheckpointWriteError

DIRECTORY = "checkpoints"
UNREADABLE_DIRECTORY = "checkpoints_unreadable"
# Tensorstore (which writes the arrays) reports a failed write as a ValueError whose
# text ends in e.g. "No space left on device [os_error_code='28']".
_OS_ERROR_CODE = re.compile(r"\[os_error_code='?(\d+)'?\]")


def os_error_of(error: BaseException) -> Optional[str]:
  """'[Errno 28] No space left on device' when `error` is a failed file operation, else None."""
  if isinstance(error, OSError):
    return " ".join(str(error).split())
  match = _OS_ERROR_CODE.search(str(error)) if isinstance(error, ValueError) else None
  if match is None:
    return None
  code = int(match.group(1))
  return f"[Errno {code}] {os.strerror(code)}"


def _differences(saved: dict[str, Any], current: dict[str, Any]) -> list[tuple[str, str, str]]:
  """(section, key, readable line) for each difference between saved and current metadata.

  Sections (e.g. 'model', 'tokenizer') are dicts compared key by key; a section
  the checkpoint lacks (written by an older version) is not compared.
  """
  found = []
  for section in sorted(current):
    if section not in saved:
      continue
    old, new = saved[section], current[section]
    for key in sorted(set(old) | set(new)):
      if old.get(key) != new.get(key):
        found.append((section, key, f"{section}.{key}={old.get(key)!r} in the checkpoint "
                                    f"but {new.get(key)!r} now"))
  return found


class Checkpointer:
  """Async, keep-N checkpoints in `<workdir>/checkpoints`."""

  def __init__(self, workdir: str, keep: int):
    self.workdir = workdir
    self.directory = os.path.join(os.path.abspath(workdir), DIRECTORY)
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                             enable_async_checkpointing=True),
        item_names=("state", "metadata"))
    self._in_flight: Optional[int] = None  # The step of an async save not yet waited for.

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def save(self, step: int, state, metadata: dict[str, Any]) -> None:
    """Starts an async save; returns once the device arrays are copied.

    Raises CheckpointWriteError if this save, or the previous one, cannot be written.
    """
    if step in self._manager.all_steps():
      return
    self.wait()  # Orbax would wait too; here a failure names the step it belongs to.
    with self._writing(step):
      self._manager.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), metadata=ocp.args.JsonSave(metadata)))
    self._in_flight = step

  def wait(self) -> None:
    """Waits for the async save in flight. Raises CheckpointWriteError if it failed."""
    with self._writing(self._in_flight):
      self._manager.wait_until_finished()
    self._in_flight = None

  def close(self) -> None:
    try:
      self.wait()
    finally:
      self._manager.close()  # Its own wait does not raise a failure twice.

  @contextlib.contextmanager
  def closing(self) -> Iterator[Checkpointer]:
    """Closes on leaving. If an error is already on its way out, a failed write only warns."""
    try:
      yield self
    except BaseException:
      try:
        self.close()
      except CheckpointWriteError as e:
        logging.warning("%s", e)
      raise
    self.close()

  @contextlib.contextmanager
  def _writing(self, step: Optional[int]) -> Iterator[None]:
    """Turns a failed write of checkpoint `step` into one CheckpointWriteError line."""
    try:
      yield
    except (OSError, ValueError) as e:
      reason = os_error_of(e)
      if reason is None:
        raise
      self._in_flight = None
      self._manager.reload()  # What is committed on disk, without the failed step.
      previous = self._manager.latest_step()
      kept = ("no earlier checkpoint" if previous is None
              else f"the previous checkpoint, step {previous}, is intact")
      what = "a checkpoint" if step is None else f"checkpoint {step}"
      raise CheckpointWriteError(f"cannot write {what} in {self.directory}: {reason}; "
                                 f"{kept}") from e

  def _move_aside(self, step: int) -> str:
    target_root = os.path.join(os.path.abspath(self.workdir), UNREADABLE_DIRECTORY)
    os.makedirs(target_root, exist_ok=True)
    target = os.path.join(target_root, str(step))
    suffix = 0
    while os.path.exists(target):
      suffix += 1
      target = os.path.join(target_root, f"{step}.{suffix}")
    shutil.move(os.path.join(self.directory, str(step)), target)
    self._manager.reload()
    return target

  def _skip_unreadable(self, step: int, error: Exception) -> None:
    reason = (str(error).splitlines() or [""])[0][:200]
    logging.warning("checkpoint %d in %s is unreadable (%s: %s); moved it to %s and "
                    "fell back to the previous one", step, self.directory,
                    type(error).__name__, reason, self._move_aside(step))

  def restore_latest(self, abstract_state, expected_metadata: dict[str, Any]):
    """Restores the newest readable checkpoint. Returns (state, metadata) or None.

    Unreadable checkpoints are moved aside and the next older one is tried. Raises
    CheckpointMismatchError if a checkpoint's metadata differs from `expected_metadata`.
    """
    steps = sorted(self._manager.all_steps(), reverse=True)
    for step in steps:
      try:
        metadata = self._manager.restore(step, args=ocp.args.Composite(
            metadata=ocp.args.JsonRestore()))["metadata"]
      except Exception as e:  # pylint: disable=broad-except
        self._skip_unreadable(step, e)
        continue
      differences = _differences(metadata, expected_metadata)
      if differences:
        raise CheckpointMismatchError(
            f"{self.directory} holds step {step} of another run: {differences[0][2]}; "
            "use another --workdir or the original config",
            [(section, key) for section, key, _ in differences])
      try:
        state = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state)))["state"]
      except Exception as e:  # pylint: disable=broad-except
        self._skip_unreadable(step, e)
        continue
      return state, metadata
    return None
