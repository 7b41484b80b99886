"""--mode=export --format=peft: a LoRA run's adapter as a PEFT folder for its base's Hugging
Face export (`PeftModel.from_pretrained(base, DIR)` loads it).

  adapter_config.json        peft_type LORA, r and lora_alpha (their ratio is the run's
                             alpha / r), target_modules (full module names), the ranks and
                             alphas of fused modules (rank_pattern, alpha_pattern), and
                             modules_to_save (a classifier's head)
  adapter_model.safetensors  base_model.model.<module>.lora_A.weight [R, in] and
                             lora_B.weight [out, R], and the saved modules' weights

The adapters go through the same name table as the weights (`hf_gpt2.rules`,
`hf_bert.rules`): each Hugging Face weight that holds LoRA-targeted kernels becomes one
adapter. GPT-2's `c_attn` holds query, key and value side by side, so adapters on query
and value become one exact adapter on c_attn of rank 2r, whose B has zero rows for the
key (and GPT-2's Conv1D stores [in, out]: fan_in_fan_out). A table rule is linear in
each kernel's output axis, so B's rows map through it unchanged. What PEFT cannot hold
exactly is refused with one line: a target without a Hugging Face weight, a base that does
not export. `merged_tensors` reads such a folder back (this project's own reader).
"""

from __future__ import annotations

import json
import os
from types import ModuleType
from typing import Any, Sequence

import jax
import numpy as np
from safetensors.numpy import load_file, save_file

from transformer_jax import parameter_paths
from transformer_jax.errors import UserError
from transformer_jax.interop.hf_tables import Rule

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
MODEL_PREFIX = "base_model.model."


def _module(family: ModuleType, rule: Rule) -> str:
  """The Hugging Face module a weight rule names ('transformer.h.0.attn.c_attn')."""
  return (rule.hf if rule.head else family.PREFIX + rule.hf).removesuffix(".weight")


def adapter_tensors(family: ModuleType, rules: Sequence[Rule], params: Any,
                    lora_rank: int, scale: float) -> tuple[dict[str, np.ndarray], dict]:
  """({PEFT tensor name: array}, {module: (rank, alpha)}) of the LoRA adapters in `params`
  (the run's tree: `lora/<module path>/{a, b}` beside the base's kernels)."""
  flat = {path: np.asarray(leaf, np.float32)
          for path, leaf in parameter_paths.flat(jax.device_get(params)).items()}
  adapted = {path.removeprefix("lora/").removesuffix("/a") + "/kernel"
             for path in flat if path.startswith("lora/") and path.endswith("/a")}
  tensors, modules, placed = {}, {}, set()
  for rule in rules:
    targeted = [path for path in rule.ours if path in adapted]
    if not targeted:
      continue
    rank = lora_rank * len(targeted)
    kernels = [flat[path] for path in rule.ours]
    fan_in = flat[f"lora/{targeted[0].removesuffix('/kernel')}/a"].shape[0]
    if rank > fan_in:
      raise UserError(f"--format=peft: {_module(family, rule)} would need an adapter of rank "
                      f"{rank}, above its {fan_in} inputs")
    a = np.concatenate([flat[f"lora/{path.removesuffix('/kernel')}/a"] for path in targeted],
                       axis=1)  # [in, R]
    padded = []
    for path, kernel in zip(rule.ours, kernels):
      rows = np.zeros((fan_in, kernel.size // fan_in), np.float32)
      if path in targeted:
        slot = targeted.index(path) * lora_rank
        rows[slot:slot + lora_rank] = flat[f"lora/{path.removesuffix('/kernel')}/b"]
      padded.append(rows.reshape(kernel.shape))
    hf = np.asarray(rule.to_hf(tuple(padded)), np.float32)
    b = hf[:rank].T if family.WEIGHT_LAYOUT == "in_out" else hf[:, :rank]  # [out, R]
    module = _module(family, rule)
    tensors[f"{MODEL_PREFIX}{module}.lora_A.weight"] = np.ascontiguousarray(a.T)
    tensors[f"{MODEL_PREFIX}{module}.lora_B.weight"] = np.ascontiguousarray(b)
    modules[module] = (rank, scale * rank)
    placed.update(targeted)
  missing = sorted(adapted - placed)
  if missing:
    raise UserError(f"--format=peft: LoRA targets without a Hugging Face weight: "
                    f"{', '.join(missing[:4])}; choose finetune.lora_targets among the "
                    "attention and MLP kernels")
  return tensors, modules


def write(directory: str, family: ModuleType, rules: Sequence[Rule], params: Any, *,
          lora_rank: int, lora_alpha: float, lora_dropout: float, task_type: str,
          saved_modules: dict[str, np.ndarray], base_model: str) -> list[str]:
  """Writes the two files into `directory` (created). saved_modules: {Hugging Face tensor
  name: array} of modules PEFT saves whole (a classifier's head)."""
  tensors, modules = adapter_tensors(family, rules, params, lora_rank, lora_alpha / lora_rank)
  saved = sorted({name.rsplit(".", 1)[0] for name in saved_modules})
  tensors.update({MODEL_PREFIX + name: np.ascontiguousarray(value, np.float32)
                  for name, value in saved_modules.items()})
  config = {
      "peft_type": "LORA", "task_type": task_type, "base_model_name_or_path": base_model,
      "r": lora_rank, "lora_alpha": lora_alpha, "lora_dropout": lora_dropout,
      "target_modules": sorted(modules), "bias": "none",
      "fan_in_fan_out": family.WEIGHT_LAYOUT == "in_out",
      "rank_pattern": {m: r for m, (r, _) in modules.items() if r != lora_rank},
      "alpha_pattern": {m: a for m, (r, a) in modules.items() if r != lora_rank},
      "modules_to_save": [name.rsplit(".", 1)[-1] for name in saved] or None,
      "inference_mode": True, "init_lora_weights": True, "use_rslora": False,
      "use_dora": False, "layers_to_transform": None, "layers_pattern": None,
      "revision": None}
  os.makedirs(directory, exist_ok=True)
  weights = os.path.join(directory, WEIGHTS_FILE)
  save_file(tensors, weights, metadata={"format": "pt"})
  path = os.path.join(directory, CONFIG_FILE)
  with open(path, "w", encoding="utf-8") as f:
    json.dump(config, f, indent=2)
  return [weights, path]


def merged_tensors(directory: str, base: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The base's Hugging Face tensors with a PEFT LoRA folder applied, as PEFT's merge does:
  W + (alpha_m / r_m) · B·A ([out, in]; transposed for fan_in_fan_out), saved modules
  replaced."""
  with open(os.path.join(directory, CONFIG_FILE), encoding="utf-8") as f:
    config = json.load(f)
  tensors = load_file(os.path.join(directory, WEIGHTS_FILE))
  merged = dict(base)
  for name, value in tensors.items():
    name = name.removeprefix(MODEL_PREFIX)
    if ".lora_" in name:
      continue
    merged[name] = value
  for module in config["target_modules"]:
    a = tensors[f"{MODEL_PREFIX}{module}.lora_A.weight"]
    b = tensors[f"{MODEL_PREFIX}{module}.lora_B.weight"]
    rank = config["rank_pattern"].get(module, config["r"])
    alpha = config["alpha_pattern"].get(module, config["lora_alpha"])
    delta = (alpha / rank) * (b @ a)
    weight = f"{module}.weight"
    merged[weight] = base[weight] + (delta.T if config["fan_in_fan_out"] else delta)
  return merged
