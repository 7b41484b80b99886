"""FSDP and tensor parallelism change nothing but the layout: every family's tiny preset
gives the 1-device losses on 4 and 8 emulated CPU devices, each parameter is sharded as
LOGICAL_AXIS_RULES says, and a checkpoint written under FSDP resumes under DP.

The runs happen in two subprocesses (tests/mesh_runs.py), one per device count, under a
timeout: several CPU devices on 2 cores have hung XLA's collectives before.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, TEST_XLA_FLAGS

pytestmark = pytest.mark.slow  # Several devices or processes: see setup.cfg's markers.

TIMEOUT_SECONDS = 400
FAMILIES = ("clm", "mlm", "seq2seq")
# Every layout for the decoder; the other families share its blocks and get FSDP x TP.
FOUR = ["clm:1,1,1", "clm:1,4,1", "clm:2,1,2", "clm:1,2,2", "mlm:1,1,1", "mlm:1,2,2",
        "seq2seq:1,1,1", "seq2seq:1,2,2"]
DECODED = ["clm:1,1,1", "clm:1,2,2", "seq2seq:1,1,1", "seq2seq:1,2,2"]  # Also decode.
RESUME = ["clm:1,4,1:2:resumed", "clm:4,1,1:4:resumed"]  # FSDP to step 2, DP from there.
EIGHT = [f"{f}:2,2,2" for f in FAMILIES]  # Data x FSDP x TP.


def _runs(tmp_path_factory, devices, specs):
  env = dict(os.environ,
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices} {TEST_XLA_FLAGS}",
             JAX_PLATFORMS="cpu")
  workdir = tmp_path_factory.mktemp(f"mesh{devices}")
  completed = subprocess.run([sys.executable, str(REPO / "tests" / "mesh_runs.py"),
                              str(workdir), *(s + "+" if s in DECODED else s for s in specs)],
                             cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=TIMEOUT_SECONDS, check=False)
  assert completed.returncode == 0, completed.stderr[-3000:]
  runs = [json.loads(line) for line in completed.stdout.splitlines()]
  for run in runs:  # JSON keys are strings.
    run["train_loss"] = {int(step): loss for step, loss in run["train_loss"].items()}
  assert [r["devices"] for r in runs] == [devices] * len(specs)
  return {r["run"]: r for r in runs}


@pytest.fixture(scope="module")
def four(tmp_path_factory):
  return _runs(tmp_path_factory, 4, FOUR + RESUME)


@pytest.fixture(scope="module")
def eight(tmp_path_factory):
  return _runs(tmp_path_factory, 8, EIGHT)


def _assert_same_losses(run, reference):
  assert sorted(run["train_loss"]) == sorted(reference["train_loss"])
  steps = sorted(reference["train_loss"])
  np.testing.assert_allclose([run["train_loss"][s] for s in steps],
                             [reference["train_loss"][s] for s in steps], rtol=2e-5)
  np.testing.assert_allclose(run["eval_loss"], reference["eval_loss"], rtol=2e-5)


@pytest.mark.parametrize("run", [r for r in FOUR if not r.endswith("1,1,1")])
def test_four_devices_match_one_device(four, run):
  _assert_same_losses(four[run], four[f"{run.split(':')[0]}:1,1,1"])


@pytest.mark.parametrize("family", FAMILIES)
def test_eight_devices_match_one_device(four, eight, family):
  _assert_same_losses(eight[f"{family}:2,2,2"], four[f"{family}:1,1,1"])


def test_each_parameter_is_sharded_as_the_rules_say(four, eight):
  specs, shares = four["clm:1,2,2"]["specs"], four["clm:1,2,2"]["shares"]
  assert specs["block_0/attention/query/kernel"] == ["fsdp", "tensor", None]  # [D, H, K]
  assert specs["block_0/attention/key/kernel"] == ["fsdp", "tensor", None]  # [D, G, K]
  assert specs["block_0/attention/output/kernel"] == ["tensor", None, "fsdp"]  # [H, K, D]
  assert specs["block_0/mlp/input/kernel"] == ["fsdp", "tensor"]  # [D, F]
  assert specs["block_0/mlp/output/kernel"] == ["tensor", "fsdp"]  # [F, D]
  assert specs["token_embedding/embedding"] == [None, "fsdp"]  # [V, D]: vocab replicated.
  assert specs["final_norm/scale"] == ["fsdp"]
  # Each device holds 1/(fsdp x tensor) of a matrix, 1/fsdp of the rest.
  assert shares["block_0/mlp/input/kernel"] == 0.25 and shares["final_norm/scale"] == 0.5
  fsdp = four["clm:1,4,1"]["shares"]
  assert all(share == 0.25 for share in fsdp.values())  # ZeRO-3: every parameter split 4 ways.
  assert all(share == 1.0 for share in four["clm:1,1,1"]["shares"].values())
  assert eight["seq2seq:2,2,2"]["specs"]["decoder/block_0/cross_attention/key/kernel"] == [
      "fsdp", "tensor", None]


@pytest.mark.parametrize("run", [r for r in DECODED if not r.endswith("1,1,1")])
def test_kv_cached_decoding_works_on_the_sharded_model(four, run):
  reference = four[f"{run.split(':')[0]}:1,1,1"]
  np.testing.assert_allclose(four[run]["prefill_logits"], reference["prefill_logits"],
                             rtol=2e-5, atol=2e-6)
  assert np.asarray(four[run]["greedy"]).shape == (2, 4)


def test_a_checkpoint_written_under_fsdp_resumes_under_data_parallelism(four):
  fsdp, resumed = four[RESUME[0]], four[RESUME[1]]  # One workdir: one metrics.jsonl.
  assert sorted(fsdp["train_loss"]) == [1, 2] and sorted(resumed["train_loss"]) == [1, 2, 3, 4]
  _assert_same_losses(resumed, four["clm:1,1,1"])
  assert all(share == 1.0 for share in resumed["shares"].values())  # DP: replicated again.
