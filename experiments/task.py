"""What every experiment does with a workdir: build the trainer, restore, train, evaluate.

An experiment (clm, mlm, seq2seq) supplies its data, model and objective; this
module turns them into a `Trainer` whose checkpoints record the tokenizer (and the
model shape, for information), and runs the `train` and `eval` modes the same way
for all. A warm start (`train.init_from`) is checked here, before anything is
written, and loaded when the run starts from step 0.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Iterable, Optional, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp
from absl import logging

from transformer_jax import configuration
from transformer_jax.adapters import export as adapter_export
from transformer_jax.adapters import finetune
from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data import tokenizer as tokenizer_lib
from transformer_jax.data.tokenizer import Tokenizer
from transformer_jax.errors import (CheckpointError, CheckpointMismatchError, ConfigError,
                                    UserError)
from transformer_jax.interop import hf_export, native_export
from transformer_jax.models import layer_stack
from transformer_jax.objectives.objective import Objective
from transformer_jax.quantization import int8
from transformer_jax.training import (checkpointing, distributed, partitioning, warm_start,
                                      workdir_lock)
from transformer_jax.training.loop import MoreMetrics, Trainer, TrainResult, format_metrics
from transformer_jax.training.train_state import TrainState
from transformer_jax.training.metrics_writer import MetricsWriter

CONFIG_FILE = "config.json"


class TaskData(Protocol):
  """What the trainer needs of a task's data (each experiment's data module adds more)."""
  tokenizer: Tokenizer

  def train_batch_at(self, step: int) -> dict:
    """This process's rows of training batch `step`: a pure function of the step."""

  def eval_batches(self) -> Iterable[dict]:
    """The evaluation batches, the same at every evaluation."""


@dataclasses.dataclass(frozen=True)
class ModeInputs:
  """What launch.py's flags give a mode besides the config: text in and out."""
  prompt: Optional[str] = None  # --prompt (clm sample).
  prompts_file: Optional[str] = None  # --prompts_file (clm sample): one prompt a line.
  # --input: translate, a file or '-' (stdin); attention, the text itself.
  input_path: Optional[str] = None
  # --output: translate, a file (None is stdout); attention and export, a directory.
  output_path: Optional[str] = None
  format: Optional[str] = None  # --format (export): hf or native.


@dataclasses.dataclass
class Task:
  """Everything the modes share, built once from the config and the workdir."""
  cfg: ExperimentConfig  # model.vocab_size filled in from the tokenizer.
  tokenizer: Tokenizer
  model: nn.Module
  data: Optional[TaskData]  # None when only decoding.
  trainer: Trainer
  warm_start: Optional[warm_start.WarmStart] = None  # Checked; loaded at step 0.
  labels: tuple[str, ...] = ()  # A classifier's classes, in id order.


def saved_tokenizer(workdir: str, names: str = "") -> Tokenizer:
  """The tokenizer a trained workdir holds (for modes that need no data); names:
  data.special_token_names."""
  path = tokenizer_lib.saved_path(workdir)
  if path is None:
    files = " or ".join(dict.fromkeys(tokenizer_lib.FILE_NAMES.values()))
    raise CheckpointError(f"{workdir} has no {files}: train a model there first")
  return tokenizer_lib.load(path, names)


def check_packing(cfg: ExperimentConfig, packings: tuple[str, ...]) -> None:
  """An experiment's own rule: the row layouts (data.packing) it can build."""
  if cfg.data.packing not in packings:
    raise ConfigError("data.packing", f"must be one of {packings} for experiment "
                      f"{cfg.experiment}, got {cfg.data.packing!r}")


def check_no_bleu(cfg: ExperimentConfig) -> None:
  """Validation BLEU is for translation (seq2seq) only."""
  if cfg.eval.bleu_pairs:
    raise ConfigError("eval.bleu_pairs", "BLEU is available for experiment seq2seq only; "
                      "set it to 0")


def check_no_translation_fields(cfg: ExperimentConfig) -> None:
  """Validation BLEU and beam search are for the experiments that generate (not mlm)."""
  check_no_bleu(cfg)
  if cfg.decode.strategy == "beam":
    raise ConfigError("decode.strategy", "beam search is available for experiments seq2seq "
                      "and clm only; use greedy or sample")


def attention_inputs(cfg: ExperimentConfig, inputs: ModeInputs) -> tuple[ExperimentConfig,
                                                                       str, str]:
  """--mode=attention: (the config with plain attention, the only kind that returns its
  weights, and the same parameters; --input's text; the --output directory)."""
  if not inputs.input_path:
    raise UserError("--mode=attention needs --input=TEXT (the text whose attention to draw)")
  if not inputs.output_path:
    raise UserError("--mode=attention needs --output=DIR (one PNG per layer goes there)")
  if cfg.model.attention_impl != "plain":
    logging.info("--mode=attention: model.attention_impl=plain (fused attention returns no "
                 "weights; the parameters are the same)")
  model = dataclasses.replace(cfg.model, attention_impl="plain")
  return dataclasses.replace(cfg, model=model), inputs.input_path, inputs.output_path


def _plan_warm_start(cfg: ExperimentConfig, workdir: str, trainer: Trainer,
                     tokenizer: Tokenizer, expected: warm_start.Expected,
                     always: bool = False) -> Optional[warm_start.WarmStart]:
  """The checked warm start of a run that has no checkpoint of its own yet (or `always`,
  for an adapter's base), else None."""
  if not cfg.train.init_from or (checkpointing.saved_steps(workdir) and not always):
    return None  # A resume: the workdir's own checkpoints come first.
  start = warm_start.plan(cfg.train, trainer.abstract_state.params, expected, cfg.model,
                          cfg.experiment)
  if cfg.train.init_from_hf is not None and cfg.data.tokenizer_path:
    start = dataclasses.replace(start, tokenizer=tokenizer_lib.fingerprint(tokenizer_lib.load(
        os.path.join(cfg.train.init_from_hf, tokenizer_lib.HF_TOKENIZER_FILE))))
  if start.tokenizer is not None and start.tokenizer != tokenizer_lib.fingerprint(tokenizer):
    given = cfg.data.tokenizer_path or tokenizer_lib.existing_path(cfg, workdir)
    raise CheckpointError(f"tokenizer file {given} does not match the checkpoint of "
                          f"train.init_from={cfg.train.init_from}")
  return start


def build(cfg: ExperimentConfig, workdir: str, *, data: Optional[TaskData],
          make_model: Callable[..., nn.Module], make_objective: Callable[[nn.Module], Objective],
          example_lengths: tuple[int, ...],
          expected_unmatched: warm_start.Expected = warm_start.Expected(),
          head_patterns: tuple[str, ...] = ()) -> Task:
  """data: the task's data (its tokenizer is the model's), or None to decode only, with
  the workdir's saved tokenizer. make_model(config=...) builds the model.
  example_lengths: one int32 [1, length] argument per positional model input.
  expected_unmatched: parameter paths a warm start may add or drop (a task head).
  head_patterns: the task head's parameter paths (what finetune.method=head trains).
  finetune.method wraps the model with an adapter (adapters/finetune.py); an adapter run
  loads its base now, whatever the mode. Nothing is written here: every check can stop
  the run before the workdir exists.
  """
  tokenizer = (data.tokenizer if data is not None
               else saved_tokenizer(workdir, cfg.data.special_token_names))
  model_cfg = dataclasses.replace(cfg.model, vocab_size=tokenizer.vocab_size)
  cfg = dataclasses.replace(cfg, model=model_cfg)
  mesh = partitioning.make_mesh(cfg.mesh, cfg.train.batch_size)
  rules = partitioning.axis_rules(cfg.mesh)
  rows = cfg.train.batch_size // partitioning.batch_parallelism(mesh)
  if rows % cfg.train.microbatches:
    raise configuration.ConfigError(
        "train.microbatches", f"{cfg.train.microbatches} does not divide the {rows} rows each "
        f"of the {partitioning.batch_parallelism(mesh)} data-parallel devices reads")
  if cfg.train.flat_gradient_all_reduce and mesh.devices.size != mesh.shape["data"]:
    raise configuration.ConfigError(
        "train.flat_gradient_all_reduce", "is for pure data parallelism; set "
        "mesh.fsdp_axis_size and mesh.tensor_axis_size to 1")
  if cfg.eval.batch_size % partitioning.batch_parallelism(mesh):
    raise configuration.ConfigError(
        "eval.batch_size", f"{cfg.eval.batch_size} is not divisible by the "
        f"{partitioning.batch_parallelism(mesh)} data-parallel devices")
  base = make_model(config=model_cfg)
  examples = [jnp.zeros((1, length), jnp.int32) for length in example_lengths]
  model = finetune.wrap(base, cfg.finetune, tuple(examples))
  adapters_only = finetune.stores_adapters_only(cfg.finetune, cfg.train)
  cfg = dataclasses.replace(cfg, train=finetune.train_config(cfg.finetune, cfg.train,
                                                              head_patterns))
  expected_unmatched = dataclasses.replace(
      expected_unmatched, new=expected_unmatched.new + finetune.new_patterns(cfg.finetune))
  # Scanned layers initialise as the unrolled model does, then stack: the same weights.
  unrolled = model if model is not base else model.clone(
      config=dataclasses.replace(model_cfg, scan_layers=False))
  def init_params(key):
    params = unrolled.init(key, *examples, deterministic=True)["params"]
    return layer_stack.stack(params) if model_cfg.scan_layers else params
  if model_cfg.quantize == "int8":
    if cfg.finetune.method == "lora":
      raise ConfigError("model.quantize", "int8 with finetune.method=lora: export the merged "
                        "model (--mode=export) and quantize that")
    model = int8.Int8Model(model, examples)
  metadata = {"model": dataclasses.asdict(model_cfg), "finetune": dataclasses.asdict(cfg.finetune),
              "tokenizer": tokenizer_lib.fingerprint(tokenizer)}
  trainer = Trainer(objective=make_objective(model), init_params=init_params,
                    config=cfg.train, mesh=mesh, workdir=workdir, checkpoint_metadata=metadata,
                    axis_rules=rules)
  start = _plan_warm_start(cfg, workdir, trainer, tokenizer, expected_unmatched,
                           always=adapters_only)
  if adapters_only:  # The frozen base, read once; its fingerprint goes in every checkpoint.
    base_params = warm_start.load(start, trainer.abstract_state.params)
    metadata["base"] = {"sha256": finetune.fingerprint(base_params)}
    trainer.frozen_params = lambda: base_params
  return Task(cfg, tokenizer, model, data, trainer, start)


def decoding_model(task: Task, params):
  """(model, params) to decode with: a scanned model decodes unrolled (the KV cache is
  per layer), with its parameters converted."""
  if not task.model.config.scan_layers:
    return task.model, params
  config = dataclasses.replace(task.model.config, scan_layers=False)
  return task.model.clone(config=config), layer_stack.unstack(params)


def decoding_mesh(task: Task):
  """Context for decoding with the task's (possibly sharded) parameters: its mesh and
  axis rules, rows replicated."""
  return partitioning.mesh_rules(task.trainer.mesh,
                                 partitioning.decoding_rules(task.trainer.axis_rules))


def restore(task: Task, params_only: bool = False):
  """Latest checkpoint or None; a mismatch names the tokenizer file when one was given."""
  try:
    return task.trainer.restore(params_only=params_only)
  except CheckpointMismatchError as e:
    from_tokenizer = any(section == "tokenizer" for section, _ in e.differences)
    if any(section == "base" for section, _ in e.differences):
      raise CheckpointError(f"{task.trainer.checkpointer.directory} holds adapters trained on "
                            f"another base than train.init_from={task.cfg.train.init_from} "
                            "(their fingerprints differ)") from e
    if task.cfg.data.tokenizer_path and from_tokenizer:
      raise CheckpointError(f"tokenizer file {task.cfg.data.tokenizer_path} does not match "
                            f"the checkpoint: {e}") from e
    raise


def restored_state(task: Task):
  """The latest checkpoint's parameters and step, for the modes that do not train."""
  state = restore(task, params_only=True)
  if state is None:
    raise CheckpointError(f"no checkpoint in {task.trainer.checkpointer.directory}: "
                          "train first (--mode=train)")
  return state


def inference_state(task: Task) -> tuple[Any, int]:
  """(parameters, step) of the latest checkpoint for the modes that do not train; int8
  (quantised after the restore, from any float checkpoint) with model.quantize=int8."""
  state = restored_state(task)
  params = state.params
  if isinstance(task.model, int8.Int8Model):
    params = task.model.quantize(params)
    logging.info("model.quantize=int8: %s bytes of parameters, %.1f%% of the float32 %s",
                 f"{int8.tree_bytes(params):,}",
                 100 * int8.tree_bytes(params) / int8.tree_bytes(state.params),
                 f"{int8.tree_bytes(state.params):,}")
  return params, int(state.step)


def inference_params(task: Task):
  """The parameters of `inference_state`."""
  return inference_state(task)[0]


def evaluate_params(task: Task, params, batches: Iterable[dict],
                    more_metrics: Optional[MoreMetrics] = None) -> dict[str, float]:
  """Trainer.evaluate for float or int8 parameters (each in the sharding it has)."""
  shardings = None
  if isinstance(task.model, int8.Int8Model):
    shardings = jax.tree_util.tree_map(lambda leaf: leaf.sharding, params)
  return task.trainer.evaluate(params, batches, more_metrics, param_shardings=shardings)


def initial_state(task: Task):
  """Step 0: the warm start's parameters where it has them, fresh ones elsewhere."""
  if task.warm_start is None:
    return task.trainer.initial_state()
  task.warm_start.log()
  state = task.trainer.initial_state(
      warm_start.load(task.warm_start, task.trainer.abstract_state.params))
  if task.cfg.finetune.method == "prompt":
    state = state.replace(params=finetune.initial_prompt(state.params, task.cfg.finetune,
                                                         task.tokenizer, task.cfg.train.seed))
  return state


def train(task: Task, workdir: str, tokens_per_step: int,
          more_metrics: Optional[MoreMetrics] = None,
          on_start: Optional[Callable[[], None]] = None) -> Optional[TrainResult]:
  """Resumes or starts, trains to train.num_steps; None if interrupted by a signal.

  more_metrics(params): metrics added to every evaluation (see Trainer.train). Holds the
  workdir's training lock throughout: one training run per workdir (see workdir_lock).
  """
  if task.cfg.model.quantize != "none":
    raise ConfigError("model.quantize", f"{task.cfg.model.quantize} is for inference (eval, "
                      "sample, translate, attention, export), not training; set it to none")
  f = task.cfg.finetune
  if f.method not in ("full", "head") and not task.cfg.train.init_from:
    raise ConfigError("train.init_from", f"finetune.method={f.method} adapts a base model: "
                      "name the base's workdir")
  if task.cfg.model.dtype == "float16":
    raise ConfigError("model.dtype", "float16 trains only with loss scaling, which this "
                      "codebase does not do: train in bfloat16 (float16 is fine for eval and "
                      "decoding)")
  os.makedirs(workdir, exist_ok=True)  # Every check that writes nothing has passed.
  with workdir_lock.WorkdirLock(workdir, enabled=distributed.is_main_process()):
    return _train_locked(task, workdir, tokens_per_step, more_metrics, on_start)


def _train_locked(task: Task, workdir: str, tokens_per_step: int,
                  more_metrics: Optional[MoreMetrics],
                  on_start: Optional[Callable[[], None]]) -> Optional[TrainResult]:
  state = restore(task)  # Raises before anything is written on a mismatch.
  if state is None:
    state = initial_state(task)
  elif task.cfg.train.init_from:
    logging.info("resuming: train.init_from=%s started this run and is not read again",
                 task.cfg.train.init_from)
  os.makedirs(workdir, exist_ok=True)
  if distributed.is_main_process():  # Every process holds the same; one writes it.
    tokenizer_lib.save(task.tokenizer, workdir)
    with open(os.path.join(workdir, CONFIG_FILE), "w", encoding="utf-8") as f:
      json.dump(configuration.to_dict(task.cfg), f, indent=2)
    if on_start is not None:  # The experiment's own files (a classifier's labels).
      on_start()
  result = task.trainer.train(state, batch_at=task.data.train_batch_at,
                              eval_batches=task.data.eval_batches,
                              tokens_per_step=tokens_per_step, more_metrics=more_metrics)
  if result.interrupted:
    return None
  if not result.last_eval:
    result.last_eval = task.trainer.evaluate(result.state.params, task.data.eval_batches(),
                                             more_metrics)
    logging.info("already trained to train.num_steps")
  logging.info("step %d: %s", int(result.state.step), format_metrics(result.last_eval))
  return result


def export(task: Task, inputs: ModeInputs) -> str:
  """--mode=export: the latest checkpoint to the new or empty directory --output, as a
  Hugging Face folder (--format=hf) or natively (`native_export`). Returns the directory."""
  directory = inputs.output_path
  if not directory:
    raise UserError("--mode=export needs --output=DIR (a new or empty directory)")
  if os.path.exists(directory) and (not os.path.isdir(directory) or os.listdir(directory)):
    raise UserError(f"--output={directory} exists and is not an empty directory; nothing is "
                    "overwritten: choose a new one")
  form = inputs.format or "native"
  if form == "hf" and task.cfg.model.quantize != "none":
    raise ConfigError("model.quantize", "--format=hf writes float32 weights; int8 exports "
                      "are --format=native")
  if form == "hf":
    hf_export.check_exportable(task.cfg)  # Before the checkpoint is read (clm, mlm only).
  params, step = inference_state(task)
  if form == "hf":
    hf_export.write(directory, task.cfg, task.tokenizer, params)
  else:
    native_export.write(directory, task.cfg, task.tokenizer, params)
  logging.info("exported step %d to %s (--format=%s)", step, directory, form)
  return directory


def export_workdir(task: Task, inputs: ModeInputs,
                   write_extra: Optional[Callable[[str], None]] = None) -> str:
  """--mode=export of a fine-tuned run: a new workdir (--output, new or empty) that needs no
  base: the latest parameters with the adapter merged or folded (adapters/export.py), the
  tokenizer, config.json and one checkpoint (parameters only: for evaluation, prediction
  and decoding, not for resuming). write_extra(directory): the experiment's own files."""
  directory = inputs.output_path
  if not directory:
    raise UserError("--mode=export needs --output=DIR (a new or empty directory)")
  if inputs.format is not None:
    raise UserError(f"--format={inputs.format} exports a pretrained clm, mlm or seq2seq "
                    f"model; experiment {task.cfg.experiment} exports a workdir (no --format)")
  if os.path.exists(directory) and (not os.path.isdir(directory) or os.listdir(directory)):
    raise UserError(f"--output={directory} exists and is not an empty directory; nothing is "
                    "overwritten: choose a new one")
  state = restored_state(task)
  params, tuned = adapter_export.standalone(state.params, task.model, task.cfg.finetune)
  cfg = dataclasses.replace(task.cfg, finetune=tuned,
                            train=dataclasses.replace(task.cfg.train, init_from=""))
  os.makedirs(directory)
  tokenizer_lib.save(task.tokenizer, directory)
  with open(os.path.join(directory, CONFIG_FILE), "w", encoding="utf-8") as f:
    json.dump(configuration.to_dict(cfg), f, indent=2)
  if write_extra is not None:
    write_extra(directory)
  checkpointer = checkpointing.Checkpointer(directory, keep=1)
  checkpointer.save(int(state.step), TrainState(step=state.step, params=params, opt_state={}),
                    {"model": dataclasses.asdict(cfg.model),
                     "tokenizer": tokenizer_lib.fingerprint(task.tokenizer)})
  checkpointer.close()
  logging.info("exported step %d to %s: evaluate it with --workdir=%s "
               "--config.train.init_from= --config.finetune.method=%s", int(state.step),
               directory, directory, tuned.method)
  return directory


def record_evaluation(workdir: str, step: int, metrics: dict[str, float]) -> None:
  """Appends to metrics.jsonl and prints one line."""
  writer = MetricsWriter(workdir, enable_tensorboard=False)
  writer.write(step, metrics)
  writer.close()
  if distributed.is_main_process():
    print(f"step {step} | {format_metrics(metrics)}")


def evaluate(task: Task, workdir: str) -> dict[str, float]:
  """--mode=eval: the latest checkpoint on the evaluation batches."""
  params, step = inference_state(task)
  metrics = evaluate_params(task, params, task.data.eval_batches())
  record_evaluation(workdir, step, metrics)
  return metrics
