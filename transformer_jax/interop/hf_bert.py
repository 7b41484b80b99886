"""BERT (`BertForPreTraining`, `BertModel`) <-> this project's `BertPretraining` (experiment mlm).

Names (Hugging Face, after the prefix 'bert.' where the model has one -> ours):
  embeddings.word_embeddings.weight [V, D]      -> token_embedding/embedding (tied MLM output)
  embeddings.position_embeddings.weight         -> encoder/position_embedding/embedding
  embeddings.token_type_embeddings.weight       -> encoder/token_type_embedding/embedding
  embeddings.LayerNorm.{weight,bias}            -> encoder/embedding_norm/{scale,bias}
  encoder.layer.{l}.attention.self.{query,key,value}.{weight,bias}
                                                -> encoder/block_{l}/attention/{...}/{kernel,bias}
  encoder.layer.{l}.attention.output.dense      -> encoder/block_{l}/attention/output
  encoder.layer.{l}.attention.output.LayerNorm  -> encoder/block_{l}/attention_norm
  encoder.layer.{l}.intermediate.dense          -> encoder/block_{l}/mlp/input
  encoder.layer.{l}.output.dense                -> encoder/block_{l}/mlp/output
  encoder.layer.{l}.output.LayerNorm            -> encoder/block_{l}/mlp_norm
  pooler.dense                                  -> pooler
  cls.predictions.transform.dense               -> mlm_transform
  cls.predictions.transform.LayerNorm           -> mlm_norm
  cls.predictions.bias [V]                      -> mlm_output_bias
  cls.seq_relationship [2, D]                   -> next_sentence, classes swapped: Hugging Face's
                                                   0 is "B follows A", this project's 1 is.
Linear weights are [out, in] there and [in, *out] here. cls.predictions.decoder.weight
and .bias, when saved, must equal the word embeddings and cls.predictions.bias (tied);
embeddings.position_ids is a buffer. A `BertModel` has no cls.* tensors: its import
leaves the heads to train.init_unmatched.
"""

from __future__ import annotations

import re
from typing import Any

from transformer_jax.config_sections import ModelConfig
from transformer_jax.interop.hf_tables import Rule, bias, same, transposed

MODEL_TYPE = "bert"
EXPERIMENT = "mlm"
PREFIX = "bert."
ARCHITECTURE = "BertForPreTraining"
WEIGHT_LAYOUT = "out_in"  # torch Linear stores [out, in].
TIED = {"cls.predictions.decoder.weight": "embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias"}
BUFFERS = re.compile(r"embeddings\.position_ids")
ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}


def model_fields(config: dict) -> tuple[dict[str, Any], list[str]]:
  """(the ModelConfig fields config.json implies, its unsupported settings)."""
  problems = []
  activation = config.get("hidden_act", "gelu")
  if activation not in ACTIVATIONS:
    problems.append(f"hidden_act={activation!r} (supported: {', '.join(ACTIVATIONS)})")
  if config.get("position_embedding_type", "absolute") != "absolute":
    problems.append(f"position_embedding_type={config['position_embedding_type']!r} "
                    "(supported: absolute)")
  if config.get("is_decoder") or config.get("add_cross_attention"):
    problems.append("is_decoder or add_cross_attention (supported: an encoder)")
  fields = {
      "num_layers": config["num_hidden_layers"], "num_heads": config["num_attention_heads"],
      "model_dim": config["hidden_size"], "mlp_dim": config["intermediate_size"],
      "max_length": config["max_position_embeddings"], "use_bias": True,
      "position": "learned", "norm": "layernorm", "norm_position": "post",
      "activation": ACTIVATIONS.get(activation, activation), "attention": "scaled_dot",
      "norm_epsilon": float(config.get("layer_norm_eps", 1e-12)), "num_kv_heads": 0,
      "num_token_types": config.get("type_vocab_size", 2), "embedding_norm": True,
      "scale_embeddings": False, "vocab_size": config["vocab_size"]}
  return fields, problems


def config_json(model: ModelConfig) -> dict[str, Any]:
  """config.json of a BERT with this model's shape."""
  activation = {"gelu": "gelu", "gelu_tanh": "gelu_new"}[model.activation]
  return {
      "architectures": [ARCHITECTURE], "model_type": MODEL_TYPE,
      "vocab_size": model.vocab_size, "hidden_size": model.model_dim,
      "num_hidden_layers": model.num_layers, "num_attention_heads": model.num_heads,
      "intermediate_size": model.mlp_dim, "hidden_act": activation,
      "hidden_dropout_prob": model.dropout_rate,
      "attention_probs_dropout_prob": model.dropout_rate,
      "max_position_embeddings": model.max_length,
      "type_vocab_size": max(model.num_token_types, 1), "initializer_range": 0.02,
      "layer_norm_eps": model.norm_epsilon, "position_embedding_type": "absolute",
      "tie_word_embeddings": True, "pad_token_id": 0, "torch_dtype": "float32"}


def export_problems(model: ModelConfig) -> list[str]:
  """Why this model is not BERT-shaped (each naming the config field), or []."""
  wanted = {"position": "learned", "norm": "layernorm", "norm_position": "post",
            "embedding_norm": True, "scale_embeddings": False, "attention": "scaled_dot"}
  problems = [f"model.{field}={getattr(model, field)!r} (BERT: {value!r})"
              for field, value in wanted.items() if getattr(model, field) != value]
  if model.activation not in ACTIVATIONS.values():
    problems.append(f"model.activation={model.activation!r} (BERT: gelu or gelu_tanh)")
  if model.num_kv_heads not in (0, model.num_heads):
    problems.append(f"model.num_kv_heads={model.num_kv_heads} (BERT: one per head, 0)")
  return problems


def _swap_classes(w):
  return w[::-1].copy()


def rules(model: ModelConfig) -> list[Rule]:
  d, h, k, f, v = (model.model_dim, model.num_heads, model.head_dim, model.mlp_dim,
                   model.vocab_size)
  types = max(model.num_token_types, 1)
  table = [
      same("embeddings.word_embeddings.weight", "token_embedding/embedding", (v, d)),
      same("embeddings.position_embeddings.weight", "encoder/position_embedding/embedding",
           (model.max_length, d)),
      same("embeddings.LayerNorm.weight", "encoder/embedding_norm/scale", (d,)),
      bias("embeddings.LayerNorm.bias", "encoder/embedding_norm/bias", (d,)),
      transposed("pooler.dense.weight", "pooler/kernel", (d, d), (d, d)),
      bias("pooler.dense.bias", "pooler/bias", (d,)),
      transposed("cls.predictions.transform.dense.weight", "mlm_transform/kernel", (d, d),
                 (d, d), head=True),
      bias("cls.predictions.transform.dense.bias", "mlm_transform/bias", (d,), head=True),
      same("cls.predictions.transform.LayerNorm.weight", "mlm_norm/scale", (d,), head=True),
      bias("cls.predictions.transform.LayerNorm.bias", "mlm_norm/bias", (d,), head=True),
      bias("cls.predictions.bias", "mlm_output_bias", (v,), head=True),
      Rule("cls.seq_relationship.weight", (2, d), ("next_sentence/kernel",),
           lambda w: (_swap_classes(w).T,), lambda arrays: _swap_classes(arrays[0].T),
           head=True),
      Rule("cls.seq_relationship.bias", (2,), ("next_sentence/bias",),
           lambda w: (_swap_classes(w),), lambda arrays: _swap_classes(arrays[0]), head=True),
  ]
  # A model without token types exports a zero row: Hugging Face's BERT always adds one.
  table.append(same("embeddings.token_type_embeddings.weight",
                    "encoder/token_type_embedding/embedding", (types, d),
                    zeros_when_absent=True))
  for layer in range(model.num_layers):
    hf, ours = f"encoder.layer.{layer}.", f"encoder/block_{layer}/"
    for name in ("query", "key", "value"):
      table += [transposed(f"{hf}attention.self.{name}.weight", f"{ours}attention/{name}/kernel",
                           (d, d), (d, h, k)),
                bias(f"{hf}attention.self.{name}.bias", f"{ours}attention/{name}/bias", (h, k))]
    table += [
        transposed(hf + "attention.output.dense.weight", ours + "attention/output/kernel",
                   (d, d), (h, k, d)),
        bias(hf + "attention.output.dense.bias", ours + "attention/output/bias", (d,)),
        same(hf + "attention.output.LayerNorm.weight", ours + "attention_norm/scale", (d,)),
        bias(hf + "attention.output.LayerNorm.bias", ours + "attention_norm/bias", (d,)),
        transposed(hf + "intermediate.dense.weight", ours + "mlp/input/kernel", (f, d), (d, f)),
        bias(hf + "intermediate.dense.bias", ours + "mlp/input/bias", (f,)),
        transposed(hf + "output.dense.weight", ours + "mlp/output/kernel", (d, f), (f, d)),
        bias(hf + "output.dense.bias", ours + "mlp/output/bias", (d,)),
        same(hf + "output.LayerNorm.weight", ours + "mlp_norm/scale", (d,)),
        bias(hf + "output.LayerNorm.bias", ours + "mlp_norm/bias", (d,)),
    ]
  return table


def classification_rules(model: ModelConfig, num_labels: int) -> list[Rule]:
  """A BertForSequenceClassification's table (experiment classify, encoder body): the
  encoder and pooler of `rules`, and the head `classifier` [labels, D]."""
  return [rule for rule in rules(model) if not rule.head] + [
      transposed("classifier.weight", "classifier/kernel", (num_labels, model.model_dim),
                 (model.model_dim, num_labels), head=True),
      bias("classifier.bias", "classifier/bias", (num_labels,), head=True)]
