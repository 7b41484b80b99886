"""An adapted model as a standalone one: the parameters and finetune fields that need no base.

  lora    the adapters merged into their kernels (W + (alpha / r)·A·B): a plain model,
          finetune.method=full.
  prefix  a reparametrised prefix folded into its plain key/value entries.
  prompt  as it is (the soft prompt is one more parameter).
The base's weights are part of the result, so the exported run reads no train.init_from.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from transformer_jax.adapters import adapted, lora
from transformer_jax.config_sections import FinetuneConfig


def standalone(params: Any, model, f: FinetuneConfig) -> tuple[Any, FinetuneConfig]:
  """(parameters, finetune config) of `model` (an `adapted.Adapted` or a plain model)
  that compute what it computes without a base."""
  if not isinstance(model, adapted.Adapted):
    return params, f
  if model.method == "lora":
    merged = lora.merge(params, model.lora_shapes, model.lora_alpha / model.lora_rank)
    return merged, dataclasses.replace(f, method="full")
  if model.method == "prefix" and model.prefix_hidden:
    return adapted.fold_prefix(params, model), dataclasses.replace(f, prefix_hidden=0)
  return params, f
