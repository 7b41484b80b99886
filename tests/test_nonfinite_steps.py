"""A step whose loss or gradient is NaN changes nothing, is counted, and too many in a row stop
the run with one line; no checkpoint ever holds a NaN; metrics.jsonl stays strict JSON.

In-process on `tiny_trainer`, a NaN injected at known steps. (The issue's command line, the
tiny preset at learning rate 1e9 without clipping, is in experiments/README.md: launch.py
prints this error as it prints every UserError.)
"""

import json
import os

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

import tiny_trainer
from transformer_jax.errors import NonFiniteTrainingError
from transformer_jax.training import partitioning, steps
from transformer_jax.training.metrics_writer import FILE_NAME


def _strict_records(workdir) -> list[dict]:
  """metrics.jsonl, line by line, refusing the NaN/Infinity tokens Python's json accepts."""
  def refuse(token):
    raise AssertionError(f"not strict JSON: {token}")
  with open(os.path.join(workdir, FILE_NAME), encoding="utf-8") as f:
    return [json.loads(line, parse_constant=refuse) for line in f]


def _checkpoint_states(workdir) -> dict[int, dict]:
  directory = os.path.join(workdir, "checkpoints")
  return {int(name): ocp.StandardCheckpointer().restore(os.path.join(directory, name, "state"))
          for name in os.listdir(directory) if name.isdigit()}


def _all_finite(tree) -> bool:
  return all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree_util.tree_leaves(tree)
             if np.issubdtype(np.asarray(leaf).dtype, np.inexact))


def _same_bits(a, b) -> bool:
  leaves_a, leaves_b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
  return len(leaves_a) == len(leaves_b) and all(
      np.asarray(x).tobytes() == np.asarray(y).tobytes() for x, y in zip(leaves_a, leaves_b))


@pytest.fixture(scope="module")
def one_step_calls(tmp_path_factory):
  """(trainer, run(state, first_index, count, poisoned, poison) -> (state, metrics) on the
  host, the initial state on the host): one compiled train step for the step tests."""
  trainer = tiny_trainer.make_trainer(tmp_path_factory.mktemp("steps"),
                                      tiny_trainer.train_config())
  train_step = steps.make_train_step(trainer.objective, trainer.optimizer, trainer.shardings,
                                     trainer.mesh, trainer.trainable)

  def run(state, first_index, count, poisoned=(), poison=tiny_trainer.POISON_LOSS):
    rows = [tiny_trainer.batch_at(i, poisoned, poison)
            for i in range(first_index, first_index + count)]
    batches = partitioning.put_batch({k: np.stack([r[k] for r in rows]) for k in rows[0]},
                                     trainer.mesh, stacked=True)
    return jax.device_get(train_step(state, batches, jax.random.key(1)))

  return trainer, run, jax.device_get(trainer.initial_state())


@pytest.mark.parametrize("poison", [tiny_trainer.POISON_LOSS, tiny_trainer.POISON_GRADIENT])
def test_a_nonfinite_step_leaves_parameters_and_optimizer_state_bit_identical(
    one_step_calls, poison):
  _, run, initial = one_step_calls
  before, first = run(initial, 0, 1)
  after, skipped = run(before, 1, 1, poisoned={2}, poison=poison)
  assert not first["nonfinite"].any() and skipped["nonfinite"].tolist() == [True]
  # A NaN loss, or a finite loss whose gradients are NaN: skipped either way.
  assert np.isnan(skipped["train_loss"][0]) == (poison == tiny_trainer.POISON_LOSS)
  assert np.isnan(skipped["grad_norm"][0]) == (poison == tiny_trainer.POISON_GRADIENT)
  assert _same_bits(after.params, before.params)
  assert _same_bits(after.opt_state, before.opt_state)
  assert int(after.step) == int(before.step) + 1  # Data and dropout keys stay per step.
  resumed, _ = run(after, 2, 1)
  assert not _same_bits(resumed.params, after.params)  # Training goes on.


def test_skipped_steps_are_counted_and_five_in_a_row_stop_the_run(tmp_path):
  # Two steps per call. Steps 5-8 are skipped and training goes on; 13 to 17 are five in a
  # row (train.max_nonfinite_steps=5): the run stops, naming step 17.
  config = tiny_trainer.train_config(num_steps=40, steps_per_call=2, log_every_steps=4,
                                     eval_every_steps=40, checkpoint_every_steps=4,
                                     keep_checkpoints=20, max_nonfinite_steps=5)
  trainer = tiny_trainer.make_trainer(tmp_path, config)
  poisoned = {5, 6, 7, 8, 13, 14, 15, 16, 17}
  with pytest.raises(NonFiniteTrainingError) as error:
    trainer.train(trainer.initial_state(),
                  batch_at=lambda i: tiny_trainer.batch_at(i, poisoned),
                  eval_batches=tiny_trainer.eval_batches, tokens_per_step=1)
  message = str(error.value)
  assert "\n" not in message
  assert message.startswith("training stopped at step 17: the loss or gradient norm was NaN "
                            "or infinite in 5 steps in a row (train.max_nonfinite_steps)")
  assert "train.learning_rate" in message and "train.grad_clip_norm" in message
  train = [r for r in _strict_records(tmp_path) if "train_loss" in r]
  assert [(r["step"], r.get("train_nonfinite_steps")) for r in train[:4]] == [
      (4, None), (8, 4), (12, None), (16, 4)]
  # The host notices step 17 at the end of its call or at the next log step (timing).
  assert [r.get("train_nonfinite_steps") for r in train[4:]] == [1]
  assert train[4]["step"] in (18, 20)
  # No step of 5-8 or 13-16 was applied: null (strict JSON); the others average those that were.
  assert [r["step"] for r in train if r["train_loss"] is None] == [8, 16]
  assert all(np.isfinite(r["train_loss"]) for r in train if r["step"] not in (8, 16))
  states = _checkpoint_states(tmp_path)
  assert {4, 8, 12, 16} <= set(states) and all(map(_all_finite, states.values()))
  # A skipped step changes nothing, bit for bit; the steps between them do.
  for before, after in ((4, 8), (12, 16)):
    assert (int(states[before]["step"]), int(states[after]["step"])) == (before, after)
    assert _same_bits(states[after]["params"], states[before]["params"])
    assert _same_bits(states[after]["opt_state"], states[before]["opt_state"])
  assert not _same_bits(states[12]["params"], states[8]["params"])


def test_a_state_holding_nan_is_never_checkpointed(one_step_calls):
  trainer, _, state = one_step_calls
  leaves, treedef = jax.tree_util.tree_flatten(state.params)
  leaves[0] = np.full_like(leaves[0], np.inf)
  state = state.replace(params=jax.tree_util.tree_unflatten(treedef, leaves))
  with pytest.raises(NonFiniteTrainingError, match="^training stopped at step 10: the "
                     "parameters or optimizer state hold NaN or infinite values, so no "
                     "checkpoint was saved;.* no checkpoint was written$"):
    trainer._save(10, state)  # pylint: disable=protected-access
  assert os.listdir(trainer.checkpointer.directory) == []
