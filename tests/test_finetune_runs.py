"""Fine-tuning runs: classify and sft from launch.py, adapter runs on a tiny BERT base
(adapter-only checkpoints, a frozen base, another base refused), and bad input."""

import json

import jax
import numpy as np
import pytest

from conftest import (SHARED_DATA, TRACEBACK, by_step, copy_workdir, last_line, run_launch,
                      tiny_config)
from transformer_jax.tasks import classify
from transformer_jax.run import weights
from transformer_jax.run import export
from transformer_jax.run.modes import ModeInputs
from transformer_jax.data.tasks import classification_data
from transformer_jax.errors import ConfigError, UserError
from transformer_jax.training import checkpointing
from transformer_jax import parameter_paths

DATA = f"--config.data.data_dir={SHARED_DATA}"


def _falls(workdir, key="train_loss"):
  losses = by_step(workdir, key)
  assert len(losses) >= 2, losses
  steps = sorted(losses)
  return losses[steps[-1]] < losses[steps[0]]


def _labelled_tsv(path) -> str:
  """Short reviews whose label one word gives away: a tiny model learns them in 40 steps
  (UCI's 2,400 sentences take a pretrained body, see experiments/README.md)."""
  lines = [f"the {thing} was {word}\t{label}" for thing in ("food", "phone", "film", "room")
           for word, label in (("great", "1"), ("awful", "0"), ("lovely", "1"), ("bad", "0"))]
  path.write_text("\n".join(lines * 4) + "\n")
  return str(path)


@pytest.mark.slow  # A long end-to-end launch.py run: see setup.cfg's markers.
@pytest.mark.parametrize("config", ["configs/classify.py:tiny", "configs/sft.py:tiny"])
def test_tiny_presets_train_from_launch_with_falling_loss(tmp_path, config, request):
  if "sft" in config:  # The session's run of this very command (conftest.sft_run).
    assert _falls(request.getfixturevalue("sft_run"))
    return
  workdir = tmp_path / "w"
  data = [DATA]
  if "classify" in config:
    data += ["--config.data.dataset=", f"--config.data.path={_labelled_tsv(tmp_path / 'r.tsv')}",
             "--config.data.format=tsv"]
  result = run_launch(f"--config={config}", f"--workdir={workdir}", *data)
  assert result.returncode == 0, result.stderr[-3000:]
  assert _falls(workdir)


def _classify(tmp_path, mlm_base, method, **overrides):
  cfg = tiny_config("classify", **{"data.data_dir": str(SHARED_DATA),
                                   "train.init_from": str(mlm_base),
                                   "finetune.method": method, "train.num_steps": 6,
                                   "train.checkpoint_every_steps": 6, **overrides})
  return cfg, str(tmp_path / method)


# Every adapter method; prefix and prompt (the same checks as lora's) in the slow tier.
@pytest.mark.parametrize("method", ["lora", pytest.param("prefix", marks=pytest.mark.slow),
                                    pytest.param("prompt", marks=pytest.mark.slow)])
def test_adapter_runs_store_only_what_they_train_on_a_frozen_base(tmp_path, mlm_base, method,
                                                                  request):
  cfg, workdir = _classify(tmp_path, mlm_base, method)
  if method == "lora":  # The session's run of this very config (conftest.classify_lora_run).
    workdir = str(copy_workdir(request.getfixturevalue("classify_lora_run"), workdir))
  else:
    classify.train(cfg, workdir)
  task = classify.build_task(cfg, workdir)
  trained = parameter_paths.flat(jax.device_get(weights.restored_state(task).params))
  # The frozen base is bit-identical to the base's own latest checkpoint.
  frozen = [p for p in trained if p not in task.trainer.trainable]
  source = checkpointing.Checkpointer(str(mlm_base), keep=1, read_only=True)
  base = parameter_paths.flat(jax.device_get(source.restore_params(
      source.latest_step(), parameter_paths.nested(
          {p: jax.ShapeDtypeStruct(trained[p].shape, trained[p].dtype) for p in frozen}))))
  assert sorted(base) == sorted(frozen) and "encoder/block_0/attention/query/kernel" in base
  for path, value in base.items():
    np.testing.assert_array_equal(trained[path], value, err_msg=path)
  # The checkpoint holds the adapter and the head: no base weight, a few kilobytes.
  _, tree = checkpointing.Checkpointer(workdir, keep=1, read_only=True).read_metadata(6)
  saved = set(checkpointing.parameter_signatures(tree["params"]))
  assert saved == set(task.trainer.trainable) and saved.isdisjoint(base)
  assert all(p.startswith(("classifier/", method)) or p.startswith("lora/") for p in saved)
  sizes = lambda d: sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
  import pathlib  # pylint: disable=import-outside-toplevel
  adapter_bytes = sizes(pathlib.Path(workdir) / "checkpoints")
  base_bytes = sizes(mlm_base / "checkpoints") / len(list((mlm_base / "checkpoints").iterdir()))
  assert adapter_bytes < base_bytes / 3, (adapter_bytes, base_bytes)
  # Evaluation restores the adapter onto the same base ...
  metrics = classify.evaluate(cfg, workdir)
  assert 0 <= metrics["test_accuracy"] <= 1
  # Exported, it is a workdir of its own: LoRA merged, no base read, the same results.
  exported = str(tmp_path / f"{method}-exported")
  export.export_workdir(classify.build_task(cfg, workdir, need_data=False),
                          ModeInputs(output_path=exported),
                          lambda d: classification_data.save_labels(task.labels, d))
  standalone = tiny_config("classify", **{
      "data.data_dir": str(SHARED_DATA),
      "finetune.method": "full" if method == "lora" else method})
  exported_metrics = classify.evaluate(standalone, exported)
  for key in ("test_loss", "test_accuracy", "eval_loss"):
    assert exported_metrics[key] == pytest.approx(metrics[key], rel=1e-5, abs=1e-6), key
  # ... and refuses another one (the base's step-15 checkpoint) with one line.
  other, _ = _classify(tmp_path, mlm_base, method, **{"train.init_from": f"{mlm_base}@15"})
  with pytest.raises(UserError, match="holds adapters trained on another base"):
    classify.evaluate(other, workdir)
  if method == "lora":  # Read without --config.finetune.method=lora: the line says so.
    full, _ = _classify(tmp_path, mlm_base, "full")
    with pytest.raises(UserError, match="finetune.method='lora' in the checkpoint but 'full' now"):
      classify.evaluate(full, workdir)


def test_an_unknown_classifier_pooling_fails_validation_naming_the_field():
  with pytest.raises(ConfigError, match=r"^config\.model\.classifier_pooling: must be one of "
                                        r"\('token', 'mean'\), got 'max'$"):
    tiny_config("classify", **{"data.data_dir": str(SHARED_DATA),
                               "model.classifier_pooling": "max"})


def test_an_adapter_method_without_a_base_is_one_line(tmp_path):
  cfg = tiny_config("classify", **{"data.data_dir": str(SHARED_DATA),
                                   "finetune.method": "lora"})
  with pytest.raises(ConfigError, match=r"^config\.train\.init_from: finetune\.method=lora "
                                        "adapts a base model"):
    classify.train(cfg, str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()


def test_a_prompt_longer_than_the_context_left_for_text_is_one_line(tmp_path, mlm_base):
  result = run_launch("--config=configs/classify.py:tiny", f"--workdir={tmp_path / 'w'}", DATA,
                      f"--config.train.init_from={mlm_base}", "--config.finetune.method=prompt",
                      "--config.finetune.prompt_length=46")
  assert result.returncode != 0 and TRACEBACK not in result.stderr
  assert last_line(result.stderr) == (
      "error: config.finetune.prompt_length: 46 soft-prompt slots leave no room for text in "
      "model.max_length=48 (3 slots at least)")
  assert not (tmp_path / "w").exists()


def test_predict_prints_a_label_and_its_probability_per_line(tmp_path, classify_run):
  workdir = classify_run  # configs/classify.py:tiny on UCI sentiment, 6 steps (read-only).
  assert json.loads((workdir / "labels.json").read_text()) == ["0", "1"]
  (tmp_path / "in.txt").write_text("Great phone, I love it.\nIt broke after one day.\n")
  result = run_launch("--config=configs/classify.py:tiny", f"--workdir={workdir}", DATA,
                      "--mode=predict", f"--input={tmp_path / 'in.txt'}")
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.strip().splitlines()
  assert len(lines) == 2
  for line in lines:
    label, probability = line.split("\t")
    assert label in ("0", "1") and 0.5 <= float(probability) <= 1.0
