"""--mode=export --format=hf: a GPT-2 (clm, sft), BERT (mlm) or BERT classifier (classify)
as a Hugging Face folder.

Writes config.json, model.safetensors (float32, the names of `hf_gpt2` / `hf_bert` read
backwards; tied copies are left for transformers to tie) and, for BPE and WordPiece
tokenizers, tokenizer.json with tokenizer_config.json and special_tokens_map.json, so that
`transformers.AutoModelFor...from_pretrained(DIR)` and `AutoTokenizer.from_pretrained(DIR)`
load it. A model without biases writes zero biases (the same function). A character
vocabulary has no Hugging Face tokenizer: it is copied as vocabulary.json and the log says so.
A model that is not GPT-2- or BERT-shaped is refused, one line per field, before the
checkpoint is read.
"""

from __future__ import annotations

import json
import os
from types import ModuleType

import jax
import numpy as np
from absl import logging
from safetensors.numpy import save_file

from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data.tokenizers import special_token_names
from transformer_jax.data.tokenizers import tokenizer as tokenizer_lib
from transformer_jax.errors import UserError
from transformer_jax.interop import hf_bert, hf_folder, hf_gpt2
from transformer_jax import parameter_paths

# A classifier with an encoder body is a BertForSequenceClassification (`classify`).
FAMILY_OF_EXPERIMENT = {"clm": hf_gpt2, "sft": hf_gpt2, "mlm": hf_bert, "classify": hf_bert}


def family(cfg: ExperimentConfig) -> ModuleType:
  if cfg.experiment not in FAMILY_OF_EXPERIMENT:
    raise UserError(f"--format=hf exports experiments {', '.join(FAMILY_OF_EXPERIMENT)} "
                    f"(GPT-2, BERT), not {cfg.experiment}; use --format=native")
  if cfg.experiment == "classify" and cfg.model.classifier_body != "encoder":
    raise UserError("--format=hf and peft export BERT classifiers (model.classifier_body="
                    "encoder): GPT2ForSequenceClassification's score has no bias, and this "
                    "classifier's head has one")
  if cfg.experiment == "classify" and cfg.model.classifier_pooling != "token":
    raise UserError("--format=hf and peft export classifiers that read <cls> (model."
                    "classifier_pooling=token): BertForSequenceClassification pools no mean")
  return FAMILY_OF_EXPERIMENT[cfg.experiment]


def rules(cfg: ExperimentConfig, num_labels: int = 0) -> list:
  """The name table of the run's model: the family's, a classifier's with its head."""
  if cfg.experiment == "classify":
    return family(cfg).classification_rules(cfg.model, num_labels)
  return family(cfg).rules(cfg.model)


def config_json(cfg: ExperimentConfig, labels: tuple[str, ...] = ()) -> dict:
  config = family(cfg).config_json(cfg.model)
  if cfg.experiment == "classify":
    config.update(architectures=["BertForSequenceClassification"], num_labels=len(labels),
                  id2label={str(i): label for i, label in enumerate(labels)},
                  label2id={label: i for i, label in enumerate(labels)})
  return config


def check_exportable(cfg: ExperimentConfig) -> None:
  """One UserError listing, one a line, each field that keeps the model from the family."""
  module = family(cfg)
  problems = module.export_problems(cfg.model)
  if problems:
    raise UserError(f"--format=hf: this model is not {module.MODEL_TYPE}-shaped:\n  "
                    + "\n  ".join(problems))


def tensors(cfg: ExperimentConfig, params, labels: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
  """{Hugging Face name: float32 array} of a parameter tree; every parameter is used."""
  module = family(cfg)
  leaves = {path: np.asarray(leaf, np.float32)
            for path, leaf in parameter_paths.flat(jax.device_get(params)).items()}
  written, used = {}, set()
  for rule in rules(cfg, len(labels)):
    name = rule.hf if rule.head else module.PREFIX + rule.hf
    if all(path in leaves for path in rule.ours):
      written[name] = np.ascontiguousarray(rule.to_hf(tuple(leaves[p] for p in rule.ours)),
                                           np.float32)
      used.update(rule.ours)
    elif rule.zeros_when_absent and not any(path in leaves for path in rule.ours):
      written[name] = np.zeros(rule.shape, np.float32)
    else:
      raise UserError(f"--format=hf: the model lacks {', '.join(rule.ours)} for {name}")
  unused = sorted(set(leaves) - used)
  if unused:
    raise UserError(f"--format=hf: {module.MODEL_TYPE} has no place for parameters "
                    f"{', '.join(unused[:4])}{' ...' if len(unused) > 4 else ''}")
  return written


def _tokenizer_files(directory: str, tokenizer, max_length: int) -> list[str]:
  if tokenizer_lib.kind(tokenizer) == "char":
    path = tokenizer_lib.save(tokenizer, directory)
    logging.warning("--format=hf: a character vocabulary has no Hugging Face tokenizer; "
                    "copied as %s (the model's ids are its characters' ranks)", path)
    return [path]
  inner = special_token_names.unwrap(tokenizer)
  names = getattr(tokenizer, "names", {})
  special = {f"{role}_token": names.get(token, token)
             for role, token in special_token_names.ROLE_TOKENS.items()
             if token in tokenizer.special_tokens}
  paths = [inner.save(os.path.join(directory, tokenizer_lib.HF_TOKENIZER_FILE))]
  for name, contents in (("tokenizer_config.json", {
      "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_length,
      "clean_up_tokenization_spaces": False, **special}),
                         ("special_tokens_map.json", special)):
    paths.append(os.path.join(directory, name))
    with open(paths[-1], "w", encoding="utf-8") as f:
      json.dump(contents, f, indent=2, ensure_ascii=False)
  return paths


def write(directory: str, cfg: ExperimentConfig, tokenizer, params,
          labels: tuple[str, ...] = ()) -> list[str]:
  """Writes the folder (created); returns the paths written. labels: a classifier's."""
  check_exportable(cfg)
  written = tensors(cfg, params, labels)
  os.makedirs(directory, exist_ok=True)
  weights = os.path.join(directory, hf_folder.WEIGHTS_FILE)
  save_file(written, weights, metadata={"format": "pt"})
  config = os.path.join(directory, hf_folder.CONFIG_FILE)
  with open(config, "w", encoding="utf-8") as f:
    json.dump(config_json(cfg, labels), f, indent=2)
  return [weights, config] + _tokenizer_files(directory, tokenizer, cfg.model.max_length)
