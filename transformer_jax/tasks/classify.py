"""Sequence classification: a label for each text, from an encoder or a decoder body.

Data: `data.dataset` (e.g. uci-sentiment) or `data.path` (tsv `text<TAB>label`, or jsonl
with data.text_field and data.label_field), split into train/validation/test
(`transformer_jax.data.corpora.labelled`). The body is `model.classifier_body`:
`encoder` (BERT: the pooler on <cls>) or `decoder` (GPT: the last real token). Usually a
warm start of a pretrained base (`train.init_from`) adapted by `finetune.method`; the
labels of the training split are saved in the workdir (labels.json).
Modes: `train` (resumes; evaluates the validation split), `eval` (validation and test
metrics: eval_* and test_* accuracy, macro F1, loss), `predict` (--input FILE or -: one
text a line; prints `label<TAB>probability` a line) and `export` (a standalone workdir).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Sequence

import jax
import numpy as np

from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data.corpora import labelled
from transformer_jax.data.tasks import classification_data
from transformer_jax.errors import CheckpointError, UserError
from transformer_jax.models.classifier import HEAD, DecoderClassifier, EncoderClassifier
from transformer_jax.objectives.classification import ClassificationObjective
from transformer_jax.run import evaluate as evaluate_lib
from transformer_jax.run import export, line_files, modes, task as task_lib, train as train_lib
from transformer_jax.run import tokenizers, weights
from transformer_jax.training import warm_start

MODES = ("train", "eval", "predict", "export")
BODIES = {"encoder": EncoderClassifier, "decoder": DecoderClassifier}
# A warm start adds the head and drops a pretrained BERT's or GPT's own heads.
EXPECTED = warm_start.Expected(new=(f"{HEAD}/.*",),
                               dropped=("mlm_transform/.*", "mlm_norm/.*", "mlm_output_bias",
                                        "next_sentence/.*"))


def text_length(cfg: ExperimentConfig) -> int:
  """Token slots for a row: the context, less a soft prompt's."""
  prompt = cfg.finetune.prompt_length if cfg.finetune.method == "prompt" else 0
  return cfg.model.max_length - prompt


def model_spec(cfg: ExperimentConfig, num_classes: int) -> task_lib.ModelSpec:
  return task_lib.ModelSpec(
      make_model=functools.partial(BODIES[cfg.model.classifier_body], num_classes=num_classes),
      make_objective=lambda model: ClassificationObjective(model, num_classes,
                                                           cfg.train.label_smoothing),
      example_lengths=(cfg.model.max_length,), expected_unmatched=EXPECTED,
      head_patterns=(f"{HEAD}/.*",))


def build_task(cfg: ExperimentConfig, workdir: Optional[str],
               need_data: bool = True) -> task_lib.Task:
  """The labels are the workdir's (labels.json), else those of the classifier whose weights
  train.init_from names, else those of the training split."""
  saved = classification_data.read_labels(workdir) if workdir is not None else None
  if saved is None and cfg.train.init_from and cfg.train.init_from_hf is None:
    saved = classification_data.read_labels(cfg.train.init_source[0])
  data = None
  if need_data:  # The head's size is the labels' count: the data comes first.
    data = classification_data.build(
        cfg, tokenizers.existing(cfg, workdir), labelled.labelled_splits(cfg),
        saved_labels=saved, encoder=cfg.model.classifier_body == "encoder",
        length=text_length(cfg))
    labels = data.labels
  elif saved is None:
    raise CheckpointError(f"{workdir} has no {classification_data.LABELS_FILE}: train a "
                          "classifier there first, or name a trained classifier with "
                          "--config.train.init_from")
  else:
    labels = saved
  task = task_lib.build(cfg, workdir, model_spec(cfg, len(labels)),
                        (lambda existing: data) if data is not None else None)
  task.labels = labels
  return task


def probability_fn(task: task_lib.Task) -> Callable[[Any, Sequence[str]], np.ndarray]:
  """(params, texts) -> [N, classes] float32, each text's class probabilities, in batches
  of eval.batch_size through one compiled function (kept by the closure)."""
  encoder = task.cfg.model.classifier_body == "encoder"
  batch_size, length = task.cfg.eval.batch_size, text_length(task.cfg)
  apply = jax.jit(lambda params, inputs, segments: jax.nn.softmax(task.model.apply(
      {"params": params}, inputs, deterministic=True, segment_ids=segments).logits))

  def probabilities(params, texts: Sequence[str]) -> np.ndarray:
    out = []
    for start in range(0, len(texts), batch_size):
      chunk = list(texts[start:start + batch_size])
      rows = classification_data.rows(task.tokenizer, chunk + [""] * (batch_size - len(chunk)),
                                      length, encoder)
      with task.decoding_mesh():
        out.append(np.asarray(apply(params, rows["inputs"], rows["segment_ids"]))[:len(chunk)])
    return np.concatenate(out) if out else np.zeros((0, len(task.labels)), np.float32)

  return probabilities


def train(cfg: ExperimentConfig, workdir: str) -> None:
  task = build_task(cfg, workdir)
  train_lib.train(task, cfg.train.batch_size * text_length(cfg),
                  on_start=lambda: classification_data.save_labels(task.labels, workdir))


def evaluate(cfg: ExperimentConfig, workdir: str) -> dict[str, float]:
  """Validation (eval_*) and test (test_*) accuracy, macro F1 and loss."""
  return evaluate_lib.evaluate(build_task(cfg, workdir))


def predict(cfg: ExperimentConfig, workdir: str, inputs: modes.ModeInputs) -> list[str]:
  if inputs.input_path is None:
    raise UserError("--mode=predict needs --input=FILE (one text a line, - for stdin)")
  texts = line_files.read_lines(inputs.input_path, "--input")
  task = build_task(cfg, workdir, need_data=False)
  params, _ = weights.inference_state(task)
  lines = []
  for row in probability_fn(task)(params, texts):
    best = int(np.argmax(row))
    lines.append(f"{task.labels[best]}\t{row[best]:.4f}")
  line_files.write_lines(lines, inputs.output_path)
  return lines


def run(cfg: ExperimentConfig, workdir: str, mode: str, inputs: modes.ModeInputs) -> None:
  if mode == "train":
    train(cfg, workdir)
  elif mode == "eval":
    evaluate(cfg, workdir)
  elif mode == "predict":
    predict(cfg, workdir, inputs)
  elif mode == "export":
    task = build_task(cfg, workdir, need_data=False)
    export.export_workdir(task, inputs, lambda directory: classification_data.save_labels(
        task.labels, directory))
  else:
    raise modes.unavailable(cfg.experiment, mode, MODES)
