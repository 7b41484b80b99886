"""A checkpoint that cannot be written (disk full) ends the run with one line and leaves the
previous checkpoint restorable, whether the write fails at once or in orbax's background thread.

The disk is "full" by monkeypatching: orbax's manager `save` (fails at once) or the JSON
writer its background thread runs (fails later, surfacing at the next save or at close).
"""

import errno

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

import tiny_trainer
from transformer_jax.errors import CheckpointWriteError
from transformer_jax.training.checkpointing import Checkpointer, os_error_of
from transformer_jax.training.train_state import TrainState

METADATA = {"model": {"num_layers": 1}}
DISK_FULL = "[Errno 28] No space left on device"
# What tensorstore, which writes the arrays, raised on a full 256 KiB tmpfs (shortened).
TENSORSTORE_DISK_FULL = (
    'RESOURCE_EXHAUSTED: Error writing local file "/full/checkpoints/20.orbax-checkpoint-tmp/'
    'state.orbax-checkpoint-tmp/_sharding": Failed to write 83 bytes to file 4: No space left '
    "on device [os_error_code='28']")


def _fail_after(calls: int, original):
  """`original`, but every call after the first `calls` raises OSError(ENOSPC)."""
  done = []

  def failing(*args, **kwargs):
    if len(done) >= calls:
      raise OSError(errno.ENOSPC, "No space left on device")
    done.append(1)
    return original(*args, **kwargs)

  return failing


def _fail_json_writes_after(monkeypatch, calls: int):
  handler = ocp.handlers.JsonCheckpointHandler
  original = handler._save_fn  # pylint: disable=protected-access
  failing = _fail_after(calls, lambda *args: None)

  async def save_fn(self, item, directory):
    failing()
    await original(self, item, directory)

  monkeypatch.setattr(handler, "_save_fn", save_fn)


def _state(value: float) -> TrainState:
  return TrainState(step=jnp.asarray(int(value), jnp.int32),
                    params={"w": jnp.full((3,), value, jnp.float32)}, opt_state={})


def _restored(directory, like):
  abstract = jax.tree_util.tree_map(
      lambda v: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=v.sharding), like)
  return Checkpointer(str(directory), keep=3).restore_latest(abstract, METADATA)


def test_a_save_that_fails_at_once_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
  checkpointer = Checkpointer(str(tmp_path), keep=1)
  monkeypatch.setattr(ocp.CheckpointManager, "save",
                      _fail_after(1, ocp.CheckpointManager.save))
  checkpointer.save(10, _state(10), METADATA)
  with pytest.raises(CheckpointWriteError) as error:
    checkpointer.save(20, _state(20), METADATA)
  assert str(error.value) == (f"cannot write checkpoint 20 in {tmp_path / 'checkpoints'}: "
                              f"{DISK_FULL}; the previous checkpoint, step 10, is intact")
  state, _ = _restored(tmp_path, _state(0))
  np.testing.assert_array_equal(state.params["w"], [10, 10, 10])


def test_a_background_write_failure_surfaces_at_the_next_save(tmp_path, monkeypatch):
  checkpointer = Checkpointer(str(tmp_path), keep=1)  # Keep-N must not delete step 10.
  _fail_json_writes_after(monkeypatch, 1)
  checkpointer.save(10, _state(10), METADATA)
  checkpointer.save(20, _state(20), METADATA)  # Returns at once; the write fails later.
  with pytest.raises(CheckpointWriteError) as error:
    checkpointer.save(30, _state(30), METADATA)
  assert str(error.value) == (f"cannot write checkpoint 20 in {tmp_path / 'checkpoints'}: "
                              f"{DISK_FULL}; the previous checkpoint, step 10, is intact")
  state, _ = _restored(tmp_path, _state(0))
  np.testing.assert_array_equal(state.params["w"], [10, 10, 10])


def test_the_training_loop_ends_with_one_line_and_a_restorable_checkpoint(tmp_path, monkeypatch):
  config = tiny_trainer.train_config(num_steps=4, log_every_steps=2, eval_every_steps=4,
                                     checkpoint_every_steps=2, keep_checkpoints=1)
  trainer = tiny_trainer.make_trainer(tmp_path, config)
  _fail_json_writes_after(monkeypatch, 1)  # Checkpoint 2 is written, 4 (the last) fails.
  with pytest.raises(CheckpointWriteError) as error:
    trainer.train(trainer.initial_state(), batch_at=tiny_trainer.batch_at,
                  eval_batches=tiny_trainer.eval_batches, tokens_per_step=1)
  assert str(error.value) == (f"cannot write checkpoint 4 in {tmp_path / 'checkpoints'}: "
                              f"{DISK_FULL}; the previous checkpoint, step 2, is intact")
  monkeypatch.undo()
  state = tiny_trainer.make_trainer(tmp_path, config).restore()
  assert int(state.step) == 2


def test_tensorstore_write_errors_are_recognised():
  assert os_error_of(ValueError(TENSORSTORE_DISK_FULL)) == DISK_FULL
  assert os_error_of(OSError(errno.EACCES, "Permission denied")) == "[Errno 13] Permission denied"
  assert os_error_of(ValueError("shapes (3,) and (4,) differ")) is None
