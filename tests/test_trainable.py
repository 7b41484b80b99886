"""train.trainable: only the selected parameters train; the rest stay bit-identical."""

import logging

import jax
import numpy as np
import pytest

from conftest import last_line, run_launch, tiny_config
from transformer_jax.tasks import clm as clm_experiment
from transformer_jax.run import train as train_lib
from transformer_jax.errors import CheckpointMismatchError, ConfigError
from transformer_jax.training import optimizer
from transformer_jax import parameter_paths

TRAINABLE = "block_1/.*,final_norm/.*"


def _task(workdir, trainable=TRAINABLE, **overrides):
  cfg = tiny_config(**{"train.trainable": trainable, "decode.max_new_tokens": 0, **overrides})
  return clm_experiment.build_task(cfg, str(workdir), need_data=True)


def test_frozen_parameters_stay_bit_identical_and_only_the_trainable_get_state(tmp_path, caplog):
  task = _task(tmp_path / "w")
  initial = parameter_paths.flat(jax.device_get(task.trainer.initial_state().params))
  with caplog.at_level(logging.INFO):
    result = train_lib.train(task, tokens_per_step=1)
  assert int(result.state.step) == 20
  trained = parameter_paths.flat(jax.device_get(result.state.params))
  chosen = {p for p in trained if p.startswith(("block_1/", "final_norm/"))}
  assert task.trainer.trainable == chosen and chosen
  for path, value in trained.items():
    if path in chosen:
      assert not np.array_equal(value, initial[path]), path
    else:
      np.testing.assert_array_equal(value, initial[path], err_msg=path)
  # Adam's moments mirror the gradients: they exist for the trainable paths only.
  adam = result.state.opt_state[1][0]  # chain(clip, adamw): adamw's scale_by_adam state.
  assert set(parameter_paths.flat(adam.mu)) == chosen == set(parameter_paths.flat(adam.nu))
  count = parameter_paths.size({p: trained[p] for p in chosen})
  total = parameter_paths.size(trained)
  assert f"trainable parameters: {count:,} of {total:,} ({100 * count / total:.2f}%)" in caplog.text


def test_weight_decay_masks_stay_on_the_trainable_part():
  task = _task("/nonexistent-never-written", trainable="block_0/mlp/.*,final_norm/.*")
  trained, _ = parameter_paths.split(task.trainer.abstract_state.params, task.trainer.trainable)
  mask = parameter_paths.flat(optimizer.decay_mask(trained))
  assert mask == {"block_0/mlp/input/kernel": True, "block_0/mlp/output/kernel": True,
                  "final_norm/scale": False}


def test_a_pattern_that_matches_nothing_is_named(tmp_path):
  with pytest.raises(ConfigError) as error:
    _task(tmp_path / "w", trainable="block_1/.*,blocks_9/.*")
  assert str(error.value).startswith("config.train.trainable: 'blocks_9/.*' matches no parameter")
  assert not (tmp_path / "w").exists()


def test_an_invalid_pattern_is_named():
  with pytest.raises(ConfigError, match=r"^config\.train\.trainable: '\(' is not a regular"):
    tiny_config(**{"train.trainable": "("})


@pytest.mark.slow  # A long end-to-end launch.py run: see setup.cfg's markers.
def test_resuming_with_other_trainable_parameters_is_one_line(tmp_path, tiny_run):
  workdir = tmp_path / "w"
  import shutil  # pylint: disable=import-outside-toplevel
  shutil.copytree(tiny_run, workdir)
  with pytest.raises(CheckpointMismatchError, match="another optimizer state"):
    train_lib.train(_task(workdir), tokens_per_step=1)
  result = run_launch("--config=configs/clm.py:tiny", f"--workdir={workdir}",
                      f"--config.train.trainable={TRAINABLE}")
  assert result.returncode != 0
  assert last_line(result.stderr).startswith("error: ") and "another optimizer state" in \
      last_line(result.stderr)
  # Evaluation reads the parameters only, so it works whatever train.trainable says.
  result = run_launch("--config=configs/clm.py:tiny", f"--workdir={workdir}", "--mode=eval",
                      f"--config.train.trainable={TRAINABLE}")
  assert result.returncode == 0, result.stderr[-3000:]
