"""Gradient accumulation, bfloat16, rematerialisation and scanned layers change memory and
speed, not the result: each tiny run gives the plain run's losses."""

import jax
import numpy as np
import pytest

from conftest import tiny_config
from transformer_jax.run import train as train_lib
from transformer_jax.run import weights
from transformer_jax import tasks
from transformer_jax.errors import ConfigError
from transformer_jax.models import layer_stack
from transformer_jax import parameter_paths
from transformer_jax.training.metrics_writer import read_metrics

STEPS = 3


def _train(workdir, family="clm", **overrides):
  cfg = tiny_config(family, **{"train.num_steps": STEPS, "train.decay_steps": 20,
                               "train.log_every_steps": 1, "train.eval_every_steps": STEPS,
                               "train.checkpoint_every_steps": STEPS,
                               "decode.max_new_tokens": 0, "eval.bleu_pairs": 0, **overrides})
  experiment = tasks.get(cfg.experiment)
  task = experiment.build_task(cfg, str(workdir), **({} if family == "mlm"
                                                     else {"need_data": True}))
  result = train_lib.train(task, tokens_per_step=1)
  losses = [r["train_loss"] for r in read_metrics(str(workdir)) if "train_loss" in r]
  return losses, result


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
  """The plain tiny clm run that the levers are compared with: (losses, result)."""
  return _train(tmp_path_factory.mktemp("plain") / "w")


# The same equivalence for every family; the encoder's and encoder-decoder's are long runs.
@pytest.mark.parametrize("family", ["clm", pytest.param("mlm", marks=pytest.mark.slow),
                                    pytest.param("seq2seq", marks=pytest.mark.slow)])
def test_micro_batches_give_the_whole_batch_update(tmp_path, plain, family):
  whole, whole_result = plain if family == "clm" else _train(tmp_path / "whole", family)
  micro, micro_result = _train(tmp_path / "micro", family, **{"train.microbatches": 4})
  np.testing.assert_allclose(micro, whole, rtol=1e-5)
  for got, want in zip(jax.tree_util.tree_leaves(micro_result.state.params),
                       jax.tree_util.tree_leaves(whole_result.state.params)):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_micro_batches_must_divide_each_devices_rows(tmp_path):
  with pytest.raises(ConfigError, match=r"^config\.train\.microbatches: 3 does not divide the "
                                        r"8 rows each of the 1 data-parallel devices reads$"):
    _train(tmp_path / "w", **{"train.microbatches": 3})


# Both levers at once here; each alone, and save_dots, in the slow tier.
@pytest.mark.parametrize("levers", [
    pytest.param({"model.remat": "full"}, id="remat_full", marks=pytest.mark.slow),
    pytest.param({"model.remat": "save_dots"}, id="remat_save_dots", marks=pytest.mark.slow),
    pytest.param({"model.scan_layers": True}, id="scan", marks=pytest.mark.slow),
    pytest.param({"model.scan_layers": True, "model.remat": "full"}, id="scan_remat")])
def test_remat_and_scanned_layers_give_the_plain_losses(tmp_path, plain, levers):
  plain, plain_result = plain
  losses, result = _train(tmp_path / "lever", **levers)
  np.testing.assert_allclose(losses, plain, rtol=1e-5)
  params = result.state.params
  if levers.get("model.scan_layers"):
    assert "blocks" in params and "block_0" not in params
    assert params["blocks"]["mlp"]["input"]["kernel"].shape[0] == 2  # [L, D, F]
    params = layer_stack.unstack(params)
  for got, want in zip(jax.tree_util.tree_leaves(params),
                       jax.tree_util.tree_leaves(plain_result.state.params)):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_checkpoints_serve_either_layer_layout(tmp_path):
  _, plain = _train(tmp_path / "w")
  cfg = tiny_config(**{"model.scan_layers": True, "train.num_steps": STEPS,
                       "decode.max_new_tokens": 0})
  task = tasks.get("clm").build_task(cfg, str(tmp_path / "w"),
                                                           need_data=True)
  restored = weights.restored_state(task)  # Unrolled checkpoint, scanned model.
  flat = parameter_paths.flat(layer_stack.unstack(restored.params))
  for path, value in parameter_paths.flat(plain.state.params).items():
    np.testing.assert_array_equal(flat[path], value)
  # Resuming training converts the optimizer state too.
  losses, resumed = _train(tmp_path / "w", **{"model.scan_layers": True,
                                              "train.num_steps": STEPS + 1})
  assert int(resumed.state.step) == STEPS + 1 and len(losses) == STEPS + 1


def test_bfloat16_steps_stay_close_to_float32(tmp_path, plain):
  full, _ = plain
  half, result = _train(tmp_path / "bf16", **{"model.dtype": "bfloat16"})
  np.testing.assert_allclose(half, full, rtol=2e-2)
  assert all(leaf.dtype == np.float32 for leaf in jax.tree_util.tree_leaves(result.state.params))
  assert all(leaf.dtype in (np.float32, np.int32)
             for leaf in jax.tree_util.tree_leaves(result.state.opt_state))


def test_float16_training_is_refused(tmp_path):
  with pytest.raises(ConfigError, match=r"^config\.model\.dtype: float16 "):
    _train(tmp_path / "w", **{"model.dtype": "float16"})
  assert not (tmp_path / "w").exists()
