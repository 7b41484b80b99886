"""train.init_from: another run's parameters, and only those, start a new run.

The source is the session's `tiny_run` (20 steps of configs/clm.py:tiny, checkpoints
at steps 10 and 20).
"""

import math

import jax
import numpy as np
import pytest

from conftest import TRACEBACK, by_step, last_line, run_launch, tiny_config
from transformer_jax.tasks import clm as clm_experiment
from transformer_jax.run import weights
from transformer_jax.data.tokenizers.bpe_tokenizer import BpeTokenizer
from transformer_jax.errors import UserError

TINY = "--config=configs/clm.py:tiny"


def _source_params(tiny_run, step=None):
  """The parameters of tiny_run's latest checkpoint (or `step`'s), read as evaluation does."""
  task = clm_experiment.build_task(tiny_config(), str(tiny_run), need_data=False)
  if step is None:
    return weights.restored_state(task).params
  return task.trainer.checkpointer.restore_params(step, task.trainer.abstract_state.params)


def _build(workdir, **overrides):
  return clm_experiment.build_task(tiny_config(**overrides), str(workdir), need_data=True)


def test_the_new_run_starts_from_the_source_parameters_and_its_loss(tmp_path, tiny_run):
  task = _build(tmp_path / "new", **{"train.init_from": str(tiny_run)})
  assert not (tmp_path / "new").exists()  # Checked, nothing written yet.
  start = task.warm_start
  assert (start.step, start.new, start.dropped) == (20, (), ())
  state = weights.initial_state(task)
  assert int(state.step) == 0
  leaves = jax.tree_util.tree_leaves_with_path
  source = dict(leaves(_source_params(tiny_run)))
  loaded = dict(leaves(state.params))
  assert source.keys() == loaded.keys()
  for path, value in loaded.items():  # Bit for bit.
    np.testing.assert_array_equal(np.asarray(value), np.asarray(source[path]), err_msg=str(path))
  # The optimizer state is fresh: Adam's step count and moments are zero.
  assert all(not np.any(np.asarray(leaf)) for leaf in jax.tree_util.tree_leaves(state.opt_state))
  # It evaluates to the source's final loss, not to a fresh model's ln(V).
  eval_loss = task.trainer.evaluate(state.params, task.data.eval_batches())["eval_loss"]
  assert eval_loss == pytest.approx(by_step(tiny_run, "eval_loss")[20], rel=1e-6)
  fresh = task.trainer.evaluate(task.trainer.initial_state().params,
                                task.data.eval_batches())["eval_loss"]
  assert fresh == pytest.approx(math.log(task.tokenizer.vocab_size), abs=0.05)
  assert eval_loss < fresh - 0.2


def test_dir_at_step_picks_that_checkpoint(tmp_path, tiny_run):
  task = _build(tmp_path / "new", **{"train.init_from": f"{tiny_run}@10"})
  assert task.warm_start.step == 10
  params = weights.initial_state(task).params
  expected = _source_params(tiny_run, step=10)
  for got, want in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(expected)):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.parametrize("overrides, message", [
    ({"model.num_layers": 3}, "parameters only this model has: block_2/attention/key/kernel, "),
    ({"model.num_layers": 1}, "only {source} has: block_1/attention/key/kernel, "),
    ({"model.mlp_dim": 128}, "parameter block_0/mlp/input/kernel is float32[32, 64] in {source} "
                             "but float32[32, 128] in this model"),
    ({"train.init_from": "{source}@7"}, "checkpoints has no step 7; it has 10, 20"),
    ({"train.init_from": "{tmp}/nothing"}, "{tmp}/nothing is not a directory"),
], ids=["missing", "extra", "shape", "step", "directory"])
def test_a_mismatch_is_one_line_before_anything_is_written(tmp_path, tiny_run, overrides,
                                                           message):
  names = {"source": str(tiny_run), "tmp": str(tmp_path)}
  overrides = {"train.init_from": str(tiny_run),
               **{k: v.format(**names) if isinstance(v, str) else v
                  for k, v in overrides.items()}}
  with pytest.raises(UserError) as error:
    _build(tmp_path / "new", **overrides)
  assert message.format(**names) in str(error.value)
  assert str(error.value).startswith("config.train.init_from: ")
  assert "\n" not in str(error.value)
  assert not (tmp_path / "new").exists()


def test_init_unmatched_allows_the_named_paths(tmp_path, tiny_run):
  task = _build(tmp_path / "new", **{"train.init_from": str(tiny_run), "model.num_layers": 3,
                                     "train.init_unmatched": "block_2/.*"})
  assert task.warm_start.new and all(p.startswith("block_2/") for p in task.warm_start.new)
  params = weights.initial_state(task).params
  source = _source_params(tiny_run)
  np.testing.assert_array_equal(params["block_1"]["mlp"]["input"]["kernel"],
                                source["block_1"]["mlp"]["input"]["kernel"])


def test_another_tokenizer_given_explicitly_is_refused(tmp_path, tiny_run):
  other = tmp_path / "other.json"
  BpeTokenizer.train(["To be, or not to be"] * 10, 270, ("<pad>", "<eos>")).save(str(other))
  with pytest.raises(UserError, match="data.tokenizer"):  # A BPE file for a char config.
    _build(tmp_path / "new", **{"train.init_from": str(tiny_run),
                                "data.tokenizer_path": str(other)})
  assert not (tmp_path / "new").exists()


@pytest.mark.slow  # A long end-to-end launch.py run: see setup.cfg's markers.
def test_from_launch_the_tokenizer_comes_along_and_training_continues(tmp_path, tiny_run):
  workdir = tmp_path / "new"
  result = run_launch(TINY, f"--workdir={workdir}", f"--config.train.init_from={tiny_run}",
                      "--config.train.num_steps=4", "--config.train.log_every_steps=1",
                      "--config.train.eval_every_steps=4", "--config.decode.max_new_tokens=0")
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"warm start from {tiny_run} step 20: " in result.stderr
  assert "new (initialised fresh): none; dropped: none" in result.stderr
  assert (workdir / "vocabulary.json").read_bytes() == (tiny_run / "vocabulary.json").read_bytes()
  first = by_step(workdir, "train_loss")[1]
  assert abs(first - by_step(tiny_run, "eval_loss")[20]) < 0.15
  assert first < math.log(65) - 0.2  # A fresh start begins near ln(V).
  # A re-run resumes the new run's own checkpoint; init_from is not read again.
  again = run_launch(TINY, f"--workdir={workdir}", f"--config.train.init_from={tiny_run}",
                     "--config.train.num_steps=4", "--config.decode.max_new_tokens=0")
  assert again.returncode == 0, again.stderr[-3000:]
  assert "is not read again" in again.stderr


def test_from_launch_a_shape_mismatch_is_one_line(tmp_path, tiny_run):
  result = run_launch(TINY, f"--workdir={tmp_path / 'new'}", f"--config.train.init_from={tiny_run}",
                      "--config.model.mlp_dim=128")
  assert result.returncode != 0 and TRACEBACK not in result.stderr
  assert [l for l in result.stderr.splitlines() if l.strip()] == [last_line(result.stderr)]
  assert last_line(result.stderr) == (
      f"error: config.train.init_from: parameter block_0/mlp/input/kernel is float32[32, 64] "
      f"in {tiny_run} but float32[32, 128] in this model")
  assert not (tmp_path / "new").exists()
