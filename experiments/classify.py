"""Sequence classification: a label for each text, from an encoder or a decoder body.

Data: `data.dataset` (e.g. uci-sentiment) or `data.path` (tsv `text<TAB>label`, or jsonl
with data.text_field and data.label_field), split into train/validation/test
(`transformer_jax.data.labelled`). The body is `model.classifier_body`: `encoder`
(BERT: the pooler on <cls>) or `decoder` (GPT: the last real token). Usually a warm
start of a pretrained base (`train.init_from`) adapted by `finetune.method`; the
labels of the training split are saved in the workdir (labels.json).
Modes: `train` (resumes; evaluates the validation split), `eval` (validation and test
metrics: eval_* and test_* accuracy, macro F1, loss) and `predict` (--input FILE or -:
one text a line; prints `label<TAB>probability` a line).
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from experiments import task as task_lib
from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data import classification_data, line_files
from transformer_jax.errors import CheckpointError, ConfigError, UserError
from transformer_jax.models.classifier import HEAD, DecoderClassifier, EncoderClassifier
from transformer_jax.objectives.classification import ClassificationObjective
from transformer_jax.training import warm_start

BODIES = {"encoder": EncoderClassifier, "decoder": DecoderClassifier}
# A warm start adds the head and drops a pretrained BERT's or GPT's own heads.
EXPECTED = warm_start.Expected(new=(f"{HEAD}/.*",),
                               dropped=("mlm_transform/.*", "mlm_norm/.*", "mlm_output_bias",
                                        "next_sentence/.*"))


def validate(cfg: ExperimentConfig) -> None:
  """The rules of this experiment's own (see `configuration.validate`)."""
  task_lib.check_no_translation_fields(cfg)
  if cfg.model.classifier_body not in BODIES:
    raise ConfigError("model.classifier_body", f"must be one of {tuple(BODIES)}, got "
                      f"{cfg.model.classifier_body!r}")
  f, length = cfg.finetune, cfg.model.max_length
  if f.method == "prompt" and f.prompt_length > length - 3:
    raise ConfigError("finetune.prompt_length", f"{f.prompt_length} soft-prompt slots leave "
                      f"no room for text in model.max_length={length} (3 slots at least)")
  if f.method == "prefix" and f.prefix_length > length:
    raise ConfigError("finetune.prefix_length", f"must be at most model.max_length={length}")


def text_length(cfg: ExperimentConfig) -> int:
  """Token slots for a row: the context, less a soft prompt's."""
  prompt = cfg.finetune.prompt_length if cfg.finetune.method == "prompt" else 0
  return cfg.model.max_length - prompt


def build_task(cfg: ExperimentConfig, workdir: str, need_data: bool = True) -> task_lib.Task:
  encoder = cfg.model.classifier_body == "encoder"
  data, labels = None, classification_data.saved_labels(workdir)
  if need_data:
    from transformer_jax.data import labelled  # pylint: disable=import-outside-toplevel
    data = classification_data.build(cfg, workdir, labelled.labelled_splits(cfg),
                                     encoder=encoder, length=text_length(cfg))
    labels = data.labels
  elif labels is None:
    raise CheckpointError(f"{workdir} has no {classification_data.LABELS_FILE}: train a "
                          "classifier there first")
  make = functools.partial(BODIES[cfg.model.classifier_body], num_classes=len(labels))
  task = task_lib.build(
      cfg, workdir, data=data, make_model=make,
      make_objective=lambda model: ClassificationObjective(model, len(labels),
                                                           cfg.train.label_smoothing),
      example_lengths=(cfg.model.max_length,), expected_unmatched=EXPECTED,
      head_patterns=(f"{HEAD}/.*",))
  task.labels = labels
  return task


def _test_metrics(task: task_lib.Task, params) -> dict[str, float]:
  metrics = task_lib.evaluate_params(task, params, task.data.test_batches())
  return {key.replace("eval_", "test_", 1): value for key, value in metrics.items()}


def train(cfg: ExperimentConfig, workdir: str) -> None:
  task = build_task(cfg, workdir)
  task_lib.train(task, workdir, cfg.train.batch_size * text_length(cfg),
                 on_start=lambda: classification_data.save_labels(task.labels, workdir))


def evaluate(cfg: ExperimentConfig, workdir: str) -> dict[str, float]:
  task = build_task(cfg, workdir)
  params, step = task_lib.inference_state(task)
  metrics = {**task_lib.evaluate_params(task, params, task.data.eval_batches()),
             **_test_metrics(task, params)}
  task_lib.record_evaluation(workdir, step, metrics)
  return metrics


def predict(cfg: ExperimentConfig, workdir: str, inputs: task_lib.ModeInputs) -> list[str]:
  if inputs.input_path is None:
    raise UserError("--mode=predict needs --input=FILE (one text a line, - for stdin)")
  texts = line_files.read_lines(inputs.input_path, "--input")
  task = build_task(cfg, workdir, need_data=False)
  params, _ = task_lib.inference_state(task)
  encoder = cfg.model.classifier_body == "encoder"
  batch_size = cfg.eval.batch_size
  apply = jax.jit(lambda params, inputs, segments: jax.nn.softmax(task.model.apply(
      {"params": params}, inputs, deterministic=True, segment_ids=segments).logits))
  lines = []
  for start in range(0, len(texts), batch_size):
    chunk = texts[start:start + batch_size]
    rows = classification_data.rows(task.tokenizer, chunk + [""] * (batch_size - len(chunk)),
                                    text_length(cfg), encoder)
    with task_lib.decoding_mesh(task):
      probabilities = np.asarray(apply(params, rows["inputs"], rows["segment_ids"]))
    for row in probabilities[:len(chunk)]:
      best = int(np.argmax(row))
      lines.append(f"{task.labels[best]}\t{row[best]:.4f}")
  line_files.write_lines(lines, inputs.output_path)
  return lines


def run(cfg: ExperimentConfig, workdir: str, mode: str, inputs: task_lib.ModeInputs) -> None:
  if mode == "train":
    train(cfg, workdir)
  elif mode == "eval":
    evaluate(cfg, workdir)
  elif mode == "predict":
    predict(cfg, workdir, inputs)
  elif mode == "export":
    task = build_task(cfg, workdir, need_data=False)
    task_lib.export_workdir(task, inputs, lambda directory: classification_data.save_labels(
        task.labels, directory))
  else:
    raise UserError(f"--mode={mode} is not available for experiment classify: "
                    "use train, eval, predict or export")
