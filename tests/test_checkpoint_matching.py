"""Checkpoints are accepted by their parameter tree and tokenizer, not by the model config:
what does not change the weights (dropout, fused attention, the computation dtype) may
differ between training and evaluation or sampling."""

import pytest

from conftest import REFERENCE_FLAGS, by_step, copy_workdir, run_launch

TINY = "--config=configs/clm.py:tiny"


@pytest.mark.slow  # Reads conftest.reference_run, which only the slow tier builds.
def test_a_checkpoint_trained_with_dropout_evaluates_without_it(tmp_path, reference_run):
  workdir = copy_workdir(reference_run, tmp_path / "w")
  assert "--config.model.dropout_rate=0.1" in REFERENCE_FLAGS  # Trained with dropout.
  result = run_launch(TINY, f"--workdir={workdir}", "--mode=eval",
                      "--config.train.num_steps=40")  # Dropout: the tiny preset's 0.
  assert result.returncode == 0, result.stderr[-3000:]
  assert by_step(workdir, "eval_loss")[40] == by_step(reference_run, "eval_loss")[40]
  assert result.stdout.startswith("step 40 | eval_loss ")


def test_sampling_with_fused_attention_in_bfloat16(tmp_path, tiny_run):
  workdir = copy_workdir(tiny_run, tmp_path / "w")
  result = run_launch(TINY, f"--workdir={workdir}", "--mode=sample", "--prompt=ROMEO:",
                      "--config.model.attention_impl=fused", "--config.model.dtype=bfloat16",
                      "--config.decode.max_new_tokens=20")
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.startswith("ROMEO:") and len(result.stdout.strip()) > len("ROMEO:")
