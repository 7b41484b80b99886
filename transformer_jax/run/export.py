"""--mode=export: a model out of its workdir, into a new or empty directory (--output).

`export` writes a GPT-2- or BERT-shaped model (clm, sft, mlm, a BERT classifier) as a
Hugging Face folder (--format=hf, an adapter merged), a LoRA run's adapter as a PEFT
folder (--format=peft), or any model in the project's own format (--format=native, the
default; int8 with model.quantize=int8). `export_workdir` writes a fine-tuned run (classify, sft) as a
standalone workdir that needs no base: the adapter merged or folded
(adapters/export.py), the tokenizer, config.json and one checkpoint (parameters only:
for evaluation, prediction and decoding, not for resuming). Either reads the mode's
parameters (`weights.inference_state`: the workdir's, else train.init_from's).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Optional

from absl import logging

from transformer_jax.adapters import export as adapter_export
from transformer_jax.data.tokenizers import tokenizer as tokenizer_lib
from transformer_jax.errors import ConfigError, UserError
from transformer_jax.interop import hf_export, native_export, peft_export
from transformer_jax.run import weights, workdir_files
from transformer_jax.run.modes import ModeInputs, new_output_directory
from transformer_jax.run.task import Task
from transformer_jax.training import checkpointing
from transformer_jax.training.train_state import TrainState


def export(task: Task, inputs: ModeInputs) -> str:
  """The mode's parameters as a Hugging Face, native or PEFT folder. Returns the directory."""
  directory = new_output_directory(inputs)
  form = inputs.format or "native"
  if form in ("hf", "peft") and task.cfg.model.quantize != "none":
    raise ConfigError("model.quantize", f"--format={form} writes float32 weights; int8 "
                      "exports are --format=native")
  if form == "peft" and task.cfg.finetune.method != "lora":
    raise UserError(f"--format=peft writes a LoRA run's adapter (finetune.method=lora), not "
                    f"finetune.method={task.cfg.finetune.method}: --format=hf writes a whole "
                    "model")
  if form in ("hf", "peft"):
    hf_export.check_exportable(task.cfg)  # Before the checkpoint is read.
  params, step = weights.inference_state(task)
  if form == "peft":
    _write_peft(task, directory, params)
  elif form == "hf":  # An adapter merged or folded: a plain model.
    merged, _ = adapter_export.standalone(params, task.model, task.cfg.finetune)
    hf_export.write(directory, task.cfg, task.tokenizer, merged, task.labels)
  else:
    native_export.write(directory, task.cfg, task.tokenizer, params)
  logging.info("exported step %d to %s (--format=%s)", step, directory, form)
  return directory


def _write_peft(task: Task, directory: str, params) -> None:
  """A LoRA run's adapter for its base's Hugging Face export (interop/peft_export.py); a
  classifier's head goes along as a module PEFT saves whole."""
  cfg, f = task.cfg, task.cfg.finetune
  saved = {}
  if cfg.experiment == "classify":
    merged, _ = adapter_export.standalone(params, task.model, f)
    saved = {name: value for name, value in
             hf_export.tensors(cfg, merged, task.labels).items()
             if name.startswith("classifier.")}
  base = cfg.train.init_from_hf or cfg.train.init_source[0]
  peft_export.write(directory, hf_export.family(cfg), hf_export.rules(cfg, len(task.labels)),
                    params, lora_rank=f.lora_rank, lora_alpha=f.lora_alpha,
                    lora_dropout=f.lora_dropout,
                    task_type="SEQ_CLS" if cfg.experiment == "classify" else "CAUSAL_LM",
                    saved_modules=saved, base_model=base)
  if cfg.train.init_from_hf is None:
    logging.info("--format=peft: the adapter is for the Hugging Face export of its base: "
                 "--mode=export --format=hf --workdir=%s --output=BASE, then "
                 "PeftModel.from_pretrained(AutoModel...(BASE), %s)", base, directory)


def export_workdir(task: Task, inputs: ModeInputs,
                   write_extra: Optional[Callable[[str], None]] = None) -> str:
  """A fine-tuned run as a standalone workdir (see the module docstring).
  write_extra(directory): the experiment's own files. --format=hf or peft writes the run's
  Hugging Face or PEFT folder instead (`export`)."""
  if inputs.format in ("hf", "peft"):
    return export(task, inputs)
  if inputs.format is not None:
    raise UserError(f"--format={inputs.format}: a standalone workdir has no format; "
                    "--format=hf or peft exports a Hugging Face or PEFT folder")
  directory = new_output_directory(inputs)
  state = weights.restored_state(task)
  params, tuned = adapter_export.standalone(state.params, task.model, task.cfg.finetune)
  # No base to read; what trains is the method's again (an adapter's run derived it).
  trainable = task.cfg.train.trainable if task.cfg.finetune.method == "full" else ".*"
  cfg = dataclasses.replace(task.cfg, finetune=tuned, train=dataclasses.replace(
      task.cfg.train, init_from="", trainable=trainable))
  os.makedirs(directory)
  workdir_files.write(directory, cfg, task.tokenizer)
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
