"""Orbax checkpoints of the train state, accepted by their parameter tree.

Each checkpoint holds two items: 'state' (step, params, optimizer state; restored
straight into the mesh's shardings) and 'metadata' (JSON: the tokenizer's
fingerprint, and the model config for information). A checkpoint is accepted when
its parameter paths, shapes and dtypes and its tokenizer match the current run's;
so a run may change what does not change the weights (dropout, fused attention,
the computation dtype). Resuming training also needs the optimizer state to fit
(the same trainable parameters and optimizer chain). A mismatch stops the run
with one line naming the first differing path, before anything is written. A
latest checkpoint that cannot be read is moved aside to `checkpoints_unreadable/`
(never deleted) and the previous one is used.

Orbax writes a checkpoint into `<step>.orbax-checkpoint-tmp` and renames it when
complete, and removes old checkpoints (keep-N) only after that: a write that
fails (disk full, permission denied) leaves the previous checkpoints as they
were, and ends the run with a `CheckpointWriteError` naming the directory and
the system's error, whether it fails at once or in the background.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import shutil
from typing import Any, Iterator, Optional

import jax
import orbax.checkpoint as ocp
from absl import logging
from jax.sharding import NamedSharding, PartitionSpec

from transformer_jax.errors import CheckpointMismatchError, CheckpointWriteError
from transformer_jax.models import layer_stack
from transformer_jax import parameter_paths

DIRECTORY = "checkpoints"
UNREADABLE_DIRECTORY = "checkpoints_unreadable"
# Metadata sections compared before restoring; the rest ('model') is for information.
COMPARED_SECTIONS = ("tokenizer", "base")  # base: an adapter run's (see adapters/finetune.py).
# Named when the parameters differ: the settings that most often explain it.
HINTED_SECTIONS = ("model", "finetune")
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


def saved_steps(workdir: str) -> list[int]:
  """The steps of a workdir's checkpoints, read from the directory (nothing is created)."""
  directory = os.path.join(workdir, DIRECTORY)
  if not os.path.isdir(directory):
    return []
  return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


def _signature(leaf) -> str:
  return f"{jax.numpy.dtype(leaf.dtype).name}{list(leaf.shape)}"


def parameter_signatures(params) -> dict[str, str]:
  """{path: 'float32[64, 32]'} of a parameter tree (arrays, shapes or orbax metadata)."""
  return {path: _signature(leaf) for path, leaf in parameter_paths.flat(params).items()}


def tree_differences(saved: dict[str, str], expected: dict[str, str]) -> list[str]:
  """Readable lines for the parameters that differ, sorted by path."""
  lines = []
  for path in sorted(set(saved) | set(expected)):
    if path not in saved:
      lines.append(f"parameter {path} is not in the checkpoint")
    elif path not in expected:
      lines.append(f"the checkpoint's parameter {path} is not in this model")
    elif saved[path] != expected[path]:
      lines.append(f"parameter {path} is {saved[path]} in the checkpoint but "
                   f"{expected[path]} now")
  return lines


def _section_differences(saved: dict[str, Any], current: dict[str, Any],
                         sections) -> list[tuple[str, str, str]]:
  """(section, key, readable line) for each difference of the given metadata sections.

  A section the checkpoint lacks (written by an older version) is not compared.
  """
  found = []
  for section in sections:
    if section not in saved or section not in current:
      continue
    old, new = saved[section], current[section]
    for key in sorted(set(old) | set(new)):
      if old.get(key) != new.get(key):
        found.append((section, key, f"{section}.{key}={old.get(key)!r} in the checkpoint "
                                    f"but {new.get(key)!r} now"))
  return found


def _leaf_shapes(tree) -> collections.Counter:
  return collections.Counter(_signature(leaf) for leaf in jax.tree_util.tree_leaves(tree))


def _shapes(tree):
  """orbax's array metadata -> ShapeDtypeStructs (so layer_stack can convert them)."""
  return jax.tree_util.tree_map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype), tree)


def _layout_conversion(saved_params, abstract_params):
  """(to the current layout, back to the saved one) when the checkpoint holds the other
  layer layout (model.scan_layers) of the same parameters; else None."""
  expected = parameter_signatures(abstract_params)
  if parameter_signatures(saved_params) == expected:
    return None
  for to_current, to_saved in ((layer_stack.stack, layer_stack.unstack),
                               (layer_stack.unstack, layer_stack.stack)):
    if parameter_signatures(to_current(saved_params)) == expected:
      return to_current, to_saved
  return None


def _in_layout(target, to_saved, mesh_of):
  """The restore target in the saved layout; converted leaves are read replicated."""
  replicated = NamedSharding(mesh_of, PartitionSpec())
  return jax.tree_util.tree_map(
      lambda s: s if s.sharding is not None else
      jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated), to_saved(target))


class Checkpointer:
  """Async, keep-N checkpoints in `<workdir>/checkpoints`."""

  def __init__(self, workdir: str, keep: int, read_only: bool = False):
    """read_only: another run's checkpoints, read and never written or created."""
    self.workdir = workdir
    self.directory = os.path.join(os.path.abspath(workdir), DIRECTORY)
    # Read-only: this class never saves, and creates nothing. (Orbax's own read_only
    # option warns on the console about every option it then ignores.)
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=not read_only,
                                           enable_async_checkpointing=not read_only)
    self.read_only = read_only
    self._manager = ocp.CheckpointManager(
        self.directory, options=options,
        item_names=("state", "metadata"),
        item_handlers={"state": ocp.PyTreeCheckpointHandler(),
                       "metadata": ocp.JsonCheckpointHandler()})
    self._in_flight: Optional[int] = None  # The step of an async save not yet waited for.

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def save(self, step: int, state, metadata: dict[str, Any]) -> None:
    """Starts an async save; returns once the device arrays are copied.

    Raises CheckpointWriteError if this save, or the previous one, cannot be written.
    """
    assert not self.read_only, "a read-only Checkpointer never saves"
    if step in self._manager.all_steps():
      return
    self.wait()  # Orbax would wait too; here a failure names the step it belongs to.
    with self._writing(step):
      self._manager.save(step, args=ocp.args.Composite(
          state=ocp.args.PyTreeSave(state), metadata=ocp.args.JsonSave(metadata)))
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

  def read_metadata(self, step: int) -> tuple[dict[str, Any], Any]:
    """(the JSON metadata, orbax's tree metadata of the state) of one checkpoint."""
    metadata = self._manager.restore(step, args=ocp.args.Composite(
        metadata=ocp.args.JsonRestore()))["metadata"]
    return metadata, self._manager.item_metadata(step)["state"].tree

  def _mismatch(self, step: int, saved: dict[str, Any], saved_tree, abstract_state,
                expected: dict[str, Any], params_only: bool) -> None:
    """Raises CheckpointMismatchError if checkpoint `step` does not fit the current run."""
    differences = _section_differences(saved, expected, COMPARED_SECTIONS)
    if differences:
      raise CheckpointMismatchError(
          f"{self.directory} holds step {step} of another run: {differences[0][2]}; "
          "use another --workdir or the original config",
          [(section, key) for section, key, _ in differences])
    lines = tree_differences(parameter_signatures(saved_tree["params"]),
                             parameter_signatures(abstract_state.params))
    if lines:
      configs = _section_differences(saved, expected, HINTED_SECTIONS)
      hint = f" ({', '.join(line for _, _, line in configs)})" if configs else ""
      raise CheckpointMismatchError(
          f"{self.directory} holds step {step} of another model: {lines[0]}{hint}"
          f"{f' and {len(lines) - 1} more' if len(lines) > 1 else ''}; use another "
          "--workdir or the original config", [("params", line) for line in lines])
    if not params_only and (_leaf_shapes(saved_tree["opt_state"])
                            != _leaf_shapes(abstract_state.opt_state)):
      raise CheckpointMismatchError(
          f"{self.directory} holds step {step} with another optimizer state (was it "
          "trained with another train.trainable, or with train.grad_clip_norm on/off?); "
          "use another --workdir or the original config", [("opt_state", "")])

  def restore_latest(self, abstract_state, expected_metadata: dict[str, Any],
                     params_only: bool = False):
    """Restores the newest readable checkpoint. Returns (state, metadata) or None.

    abstract_state: the state's shapes with shardings attached. params_only: read
    the parameters alone (the optimizer state need not fit); the state returned
    then holds them and the step, and opt_state None. Unreadable checkpoints are
    moved aside and the next older one is tried. Raises CheckpointMismatchError if
    a checkpoint does not fit the current run (see the module docstring).
    """
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        metadata, saved_tree = self.read_metadata(step)
      except Exception as e:  # pylint: disable=broad-except
        self._skip_unreadable(step, e)
        continue
      saved_tree = _shapes(saved_tree)
      conversion = _layout_conversion(saved_tree["params"], abstract_state.params)
      if conversion is not None:  # The other layer layout: compare in this one.
        saved_tree = conversion[0](saved_tree)
      self._mismatch(step, metadata, saved_tree, abstract_state, expected_metadata,
                     params_only)
      target = abstract_state
      if params_only:
        target = {"step": abstract_state.step, "params": abstract_state.params}
      read = target
      if conversion is not None:
        read = _in_layout(target, conversion[1], abstract_state.step.sharding.mesh)
      try:
        restored = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.PyTreeRestore(
                item=read, restore_args=ocp.checkpoint_utils.construct_restore_args(read),
                partial_restore=params_only)))["state"]
      except Exception as e:  # pylint: disable=broad-except
        self._skip_unreadable(step, e)
        continue
      if conversion is not None:
        logging.info("checkpoint %d holds the other layer layout (model.scan_layers); "
                     "converted", step)
        restored = jax.device_put(conversion[0](restored),
                                  jax.tree_util.tree_map(lambda s: s.sharding, target))
      if params_only:
        restored = abstract_state.replace(step=restored["step"], params=restored["params"],
                                          opt_state=None)
      return restored, metadata
    return None

  def restore_params(self, step: int, abstract_params) -> Any:
    """The parameters at the paths of `abstract_params` (a subset of the checkpoint's,
    shapes with shardings attached), read bit-exactly into those shardings."""
    target = {"params": abstract_params}
    return self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.PyTreeRestore(
            item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
            partial_restore=True)))["state"]["params"]
