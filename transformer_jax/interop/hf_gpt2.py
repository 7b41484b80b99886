"""GPT-2 (`GPT2LMHeadModel`, `GPT2Model`) <-> this project's `Decoder` (experiment clm).

Names (Hugging Face, after the prefix 'transformer.' -> ours):
  wte.weight [V, D]                -> token_embedding/embedding (also the tied lm_head)
  wpe.weight [C, D]                -> position_embedding/embedding
  h.{l}.ln_1.{weight,bias}         -> block_{l}/attention_norm/{scale,bias}
  h.{l}.attn.c_attn.{weight,bias}  -> block_{l}/attention/{query,key,value}/{kernel,bias}
                                      ([D, 3D] Conv1D: q, k, v side by side, heads contiguous)
  h.{l}.attn.c_proj.{weight,bias}  -> block_{l}/attention/output/{kernel,bias}
  h.{l}.ln_2.{weight,bias}         -> block_{l}/mlp_norm/{scale,bias}
  h.{l}.mlp.c_fc.{weight,bias}     -> block_{l}/mlp/input/{kernel,bias}
  h.{l}.mlp.c_proj.{weight,bias}   -> block_{l}/mlp/output/{kernel,bias}
  ln_f.{weight,bias}               -> final_norm/{scale,bias}
lm_head.weight, when saved, must equal wte.weight (GPT-2 ties them); h.{l}.attn.bias and
.masked_bias are causal-mask buffers of older transformers versions, not parameters.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from transformer_jax.config_sections import ModelConfig
from transformer_jax.interop.hf_tables import Rule, bias, reshaped, same

MODEL_TYPE = "gpt2"
EXPERIMENT = "clm"
PREFIX = "transformer."
ARCHITECTURE = "GPT2LMHeadModel"
WEIGHT_LAYOUT = "in_out"  # Conv1D stores [in, out] (a PEFT adapter's fan_in_fan_out).
TIED = {"lm_head.weight": "wte.weight"}  # Saved or not, equal to the tensor named.
BUFFERS = re.compile(r"h\.\d+\.attn\.(bias|masked_bias)")
ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu",
               "relu": "relu"}


def model_fields(config: dict) -> tuple[dict[str, Any], list[str]]:
  """(the ModelConfig fields config.json implies, its unsupported settings)."""
  problems = []
  activation = config.get("activation_function", "gelu_new")
  if activation not in ACTIVATIONS:
    problems.append(f"activation_function={activation!r} (supported: "
                    f"{', '.join(ACTIVATIONS)})")
  for key in ("scale_attn_by_inverse_layer_idx", "add_cross_attention"):
    if config.get(key):
      problems.append(f"{key}=true")
  width = config["n_embd"]
  fields = {
      "num_layers": config["n_layer"], "num_heads": config["n_head"], "model_dim": width,
      "mlp_dim": config.get("n_inner") or 4 * width, "max_length": config["n_positions"],
      "use_bias": True, "position": "learned", "norm": "layernorm", "norm_position": "pre",
      "activation": ACTIVATIONS.get(activation, activation),
      "attention": "scaled_dot" if config.get("scale_attn_weights", True) else "dot",
      "norm_epsilon": float(config.get("layer_norm_epsilon", 1e-5)),
      "num_kv_heads": 0, "num_token_types": 0, "embedding_norm": False,
      "scale_embeddings": False, "vocab_size": config["vocab_size"]}
  return fields, problems


def config_json(model: ModelConfig) -> dict[str, Any]:
  """config.json of a GPT-2 with this model's shape (dropout as the model's)."""
  activation = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}[model.activation]
  return {
      "architectures": [ARCHITECTURE], "model_type": MODEL_TYPE,
      "vocab_size": model.vocab_size, "n_positions": model.max_length, "n_embd": model.model_dim,
      "n_layer": model.num_layers, "n_head": model.num_heads, "n_inner": model.mlp_dim,
      "activation_function": activation, "layer_norm_epsilon": model.norm_epsilon,
      "scale_attn_weights": model.attention == "scaled_dot", "resid_pdrop": model.dropout_rate,
      "embd_pdrop": model.dropout_rate, "attn_pdrop": model.dropout_rate,
      "initializer_range": 0.02, "tie_word_embeddings": True, "use_cache": True,
      "bos_token_id": None, "eos_token_id": None, "torch_dtype": "float32"}


def export_problems(model: ModelConfig) -> list[str]:
  """Why this model is not GPT-2-shaped (each naming the config field), or []."""
  wanted = {"position": "learned", "norm": "layernorm", "norm_position": "pre",
            "num_token_types": 0, "embedding_norm": False, "scale_embeddings": False}
  problems = [f"model.{field}={getattr(model, field)!r} (GPT-2: {value!r})"
              for field, value in wanted.items() if getattr(model, field) != value]
  if model.activation not in ("gelu", "gelu_tanh", "relu"):
    problems.append(f"model.activation={model.activation!r} (GPT-2: gelu_tanh, gelu or relu)")
  if model.attention not in ("scaled_dot", "dot"):
    problems.append(f"model.attention={model.attention!r} (GPT-2: scaled_dot or dot)")
  if model.num_kv_heads not in (0, model.num_heads):
    problems.append(f"model.num_kv_heads={model.num_kv_heads} (GPT-2: one per head, 0)")
  return problems


def rules(model: ModelConfig) -> list[Rule]:
  d, h, k, f = model.model_dim, model.num_heads, model.head_dim, model.mlp_dim
  table = [same("wte.weight", "token_embedding/embedding", (model.vocab_size, d)),
           same("wpe.weight", "position_embedding/embedding", (model.max_length, d)),
           same("ln_f.weight", "final_norm/scale", (d,)),
           bias("ln_f.bias", "final_norm/bias", (d,))]
  for layer in range(model.num_layers):
    hf, ours = f"h.{layer}.", f"block_{layer}/"
    attention = ours + "attention/"
    qkv = tuple(f"{attention}{name}/kernel" for name in ("query", "key", "value"))
    qkv_bias = tuple(f"{attention}{name}/bias" for name in ("query", "key", "value"))
    table += [
        same(hf + "ln_1.weight", ours + "attention_norm/scale", (d,)),
        bias(hf + "ln_1.bias", ours + "attention_norm/bias", (d,)),
        Rule(hf + "attn.c_attn.weight", (d, 3 * d), qkv,
             lambda w, d=d, h=h, k=k: tuple(w.reshape(d, 3, h, k).transpose(1, 0, 2, 3)),
             lambda arrays, d=d: np.concatenate(
                 [a.reshape(d, -1) for a in arrays], axis=1)),
        Rule(hf + "attn.c_attn.bias", (3 * d,), qkv_bias,
             lambda w, h=h, k=k: tuple(w.reshape(3, h, k)),
             lambda arrays: np.concatenate([a.reshape(-1) for a in arrays]),
             zeros_when_absent=True),
        reshaped(hf + "attn.c_proj.weight", attention + "output/kernel", (d, d), (h, k, d)),
        bias(hf + "attn.c_proj.bias", attention + "output/bias", (d,)),
        same(hf + "ln_2.weight", ours + "mlp_norm/scale", (d,)),
        bias(hf + "ln_2.bias", ours + "mlp_norm/bias", (d,)),
        same(hf + "mlp.c_fc.weight", ours + "mlp/input/kernel", (d, f)),
        bias(hf + "mlp.c_fc.bias", ours + "mlp/input/bias", (f,)),
        same(hf + "mlp.c_proj.weight", ours + "mlp/output/kernel", (f, d)),
        bias(hf + "mlp.c_proj.bias", ours + "mlp/output/bias", (d,)),
    ]
  return table
