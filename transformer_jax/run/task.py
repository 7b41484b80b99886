"""A task: everything the modes of one experiment share, built once from the config.

An experiment (transformer_jax/tasks/) says what its model is (`ModelSpec`: the model,
its objective, the example inputs, what a warm start may leave unmatched, the task
head) and how to read its data; `build` makes the rest the same way for all: the
tokenizer (`tokenizers.py`), the mesh, the model adapted by `finetune.method` and
quantised by `model.quantize`, the checked warm start of `train.init_from` (an adapter
run loads its frozen base now, whatever the mode), and a `Trainer` whose checkpoints
record the tokenizer and the model shape. Nothing is written: every check can stop the
run before the workdir exists.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import flax.linen as nn
import jax.numpy as jnp

from transformer_jax import config_choices
from transformer_jax.adapters import finetune
from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data.tasks.task_data import TaskData
from transformer_jax.data.tokenizers import tokenizer as tokenizer_lib
from transformer_jax.data.tokenizers.tokenizer import Existing, Tokenizer
from transformer_jax.errors import CheckpointError, ConfigError
from transformer_jax.models import layer_stack
from transformer_jax.objectives.objective import Objective
from transformer_jax.quantization import int8
from transformer_jax.run import sources, tokenizers
from transformer_jax.training import checkpointing, partitioning, train_state, warm_start
from transformer_jax.training.loop import Trainer


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """What an experiment's model is, for `build`."""
  make_model: Callable[..., nn.Module]  # make_model(config=ModelConfig) -> the model.
  make_objective: Callable[[nn.Module], Objective]
  example_lengths: tuple[int, ...]  # One int32 [1, length] argument per positional input.
  # Parameter paths a warm start may add or drop (a task head, a base's pretraining heads).
  expected_unmatched: warm_start.Expected = warm_start.Expected()
  head_patterns: tuple[str, ...] = ()  # The task head's paths (what finetune.method=head trains).


@dataclasses.dataclass
class Task:
  """Everything the modes share, built once from the config and the workdir."""
  cfg: ExperimentConfig  # model.vocab_size filled in from the tokenizer.
  tokenizer: Tokenizer
  model: nn.Module  # Adapted (finetune.method) and int8 (model.quantize) as configured.
  data: Optional[TaskData]  # None when only decoding.
  trainer: Trainer
  warm_start: Optional[warm_start.WarmStart] = None  # Checked; loaded at step 0.
  labels: tuple[str, ...] = ()  # A classifier's classes, in id order.

  @property
  def workdir(self) -> Optional[str]:
    return self.trainer.workdir

  def decoding_model(self, params) -> tuple[nn.Module, object]:
    """(model, params) to decode with: a scanned model decodes unrolled (the KV cache is
    per layer), with its parameters converted."""
    if not self.model.config.scan_layers:
      return self.model, params
    config = dataclasses.replace(self.model.config, scan_layers=False)
    return self.model.clone(config=config), layer_stack.unstack(params)

  def decoding_mesh(self):
    """Context for decoding with the task's (possibly sharded) parameters: its mesh and
    axis rules, rows replicated."""
    return partitioning.mesh_rules(self.trainer.mesh,
                                   partitioning.decoding_rules(self.trainer.axis_rules))


def _check_mesh(cfg: ExperimentConfig, mesh) -> None:
  parallel = partitioning.batch_parallelism(mesh)
  rows = cfg.train.batch_size // parallel
  if rows % cfg.train.microbatches:
    raise ConfigError("train.microbatches", f"{cfg.train.microbatches} does not divide the "
                      f"{rows} rows each of the {parallel} data-parallel devices reads")
  if cfg.train.flat_gradient_all_reduce and mesh.devices.size != mesh.shape["data"]:
    raise ConfigError("train.flat_gradient_all_reduce", "is for pure data parallelism; set "
                      "mesh.fsdp_axis_size and mesh.tensor_axis_size to 1")
  if cfg.eval.batch_size % parallel:
    raise ConfigError("eval.batch_size", f"{cfg.eval.batch_size} is not divisible by the "
                      f"{parallel} data-parallel devices")


def _plan_warm_start(cfg: ExperimentConfig, workdir: Optional[str], abstract_params,
                     tokenizer: Tokenizer, expected: warm_start.Expected,
                     always: bool) -> Optional[warm_start.WarmStart]:
  """The checked warm start of a run that has no checkpoint of its own yet (or `always`,
  for an adapter's base), else None."""
  resuming = workdir is not None and checkpointing.saved_steps(workdir)
  if not cfg.train.init_from or (resuming and not always):
    return None  # A resume: the workdir's own checkpoints come first.
  allowed = config_choices.patterns(cfg.train.init_unmatched)
  source = sources.open_source(cfg, expected.new + allowed)
  start = warm_start.plan(source, abstract_params, expected, allowed)
  recorded = start.tokenizer
  if cfg.train.init_from_hf is not None and cfg.data.tokenizer_path:
    recorded = tokenizer_lib.fingerprint(tokenizer_lib.load(
        tokenizers.weights_tokenizer_path(cfg)))
  if recorded is not None and recorded != tokenizer_lib.fingerprint(tokenizer):
    given = cfg.data.tokenizer_path or tokenizer_lib.saved_path(workdir or "") or "the tokenizer"
    raise CheckpointError(f"tokenizer file {given} does not match the checkpoint of "
                          f"train.init_from={cfg.train.init_from}")
  return start


def build(cfg: ExperimentConfig, workdir: Optional[str], spec: ModelSpec,
          make_data: Optional[Callable[[Optional[Existing]], TaskData]] = None) -> Task:
  """The task of `cfg` in `workdir` (None: no workdir, weights from train.init_from only).

  make_data(existing tokenizer or None) reads the task's data, whose tokenizer is then
  the model's; without it (modes that only decode) the tokenizer must exist already.
  """
  existing = tokenizers.existing(cfg, workdir)
  data = make_data(existing) if make_data is not None else None
  tokenizer = data.tokenizer if data is not None else tokenizers.required(cfg, workdir)
  model_cfg = dataclasses.replace(cfg.model, vocab_size=tokenizer.vocab_size)
  cfg = dataclasses.replace(cfg, model=model_cfg)
  mesh = partitioning.make_mesh(cfg.mesh, cfg.train.batch_size)
  rules = partitioning.axis_rules(cfg.mesh)
  _check_mesh(cfg, mesh)
  base = spec.make_model(config=model_cfg)
  examples = tuple(jnp.zeros((1, length), jnp.int32) for length in spec.example_lengths)
  model = finetune.wrap(base, cfg.finetune, examples)
  adapters_only = finetune.stores_adapters_only(cfg.finetune, cfg.train)
  cfg = dataclasses.replace(cfg, train=finetune.train_config(cfg.finetune, cfg.train,
                                                              spec.head_patterns))
  expected = dataclasses.replace(
      spec.expected_unmatched,
      new=spec.expected_unmatched.new + finetune.new_patterns(cfg.finetune))
  # Scanned layers initialise as the unrolled model does, then stack: the same weights.
  unrolled = model if model is not base else model.clone(
      config=dataclasses.replace(model_cfg, scan_layers=False))

  def init_params(key):
    params = unrolled.init(key, *examples, deterministic=True)["params"]
    return layer_stack.stack(params) if model_cfg.scan_layers else params

  abstract = train_state.sharded_abstract_params(init_params, mesh, rules)
  start = _plan_warm_start(cfg, workdir, abstract, tokenizer, expected, always=adapters_only)
  metadata = {"model": dataclasses.asdict(model_cfg),
              "finetune": dataclasses.asdict(cfg.finetune),
              "tokenizer": tokenizer_lib.fingerprint(tokenizer)}
  frozen = None
  if adapters_only:  # The frozen base, read once; its fingerprint goes in every checkpoint.
    frozen = warm_start.load(start, abstract)
    metadata["base"] = {"sha256": finetune.fingerprint(frozen)}
  if model_cfg.quantize == "int8":
    if cfg.finetune.method == "lora":
      raise ConfigError("model.quantize", "int8 with finetune.method=lora: export the merged "
                        "model (--mode=export) and quantize that")
    model = int8.Int8Model(model, examples)
  trainer = Trainer(objective=spec.make_objective(model), init_params=init_params,
                    config=cfg.train, mesh=mesh, workdir=workdir, checkpoint_metadata=metadata,
                    axis_rules=rules, frozen_params=frozen)
  return Task(cfg, tokenizer, model, data, trainer, start)

