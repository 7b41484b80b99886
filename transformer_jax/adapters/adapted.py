"""A model with a parameter-efficient adaptation around it: LoRA, prefix or prompt tuning.

`Adapted(base=..., method=...)` shares the base's scope, so the base's parameters keep
their names (a checkpoint of the base loads as is) and the method's own sit beside
them: `lora/...`, `prefix`, or `prompt`. Calls pass through to the base:
  lora    every targeted weight matmul gains (alpha / r)·dropout(x)·A·B (see lora.py);
  prefix  `prefix_length` key/value entries in front of every self-attention, position
          free: the tokens keep the positions they have without it (0, 1, ...). With
          `prefix_hidden` > 0 the entries come from a smaller table through an MLP
          (Li & Liang's reparametrisation); `fold` turns that into plain entries;
  prompt  `prompt_length` embeddings in front of the tokens (Lester et al.) at positions
          0 .. P-1, the tokens' positions shifted by P. With a KV cache (decoding) the
          prompt's own keys and values, which no later token changes in a causal
          decoder, become prefix entries, so decoding equals the full forward.
An adapter at initialisation changes nothing only for LoRA (B = 0); prefix and prompt
entries always take attention.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.adapters import lora
from transformer_jax.models import initializers, kv_cache
from transformer_jax.models.attention import PrefixKV
from transformer_jax.models.projection import Projection

PREFIX, PROMPT = "prefix", "prompt"
ADAPTER_METHODS = ("lora", "prefix", "prompt")  # The methods whose runs store adapters only.


def num_layers(config) -> int:
  """The self-attention layers a prefix goes in front of (encoders may have their own count)."""
  return config.num_encoder_layers or config.num_layers


class Adapted(nn.Module):
  base: nn.Module  # Decoder, EncoderClassifier or DecoderClassifier (anything with .config).
  method: str  # lora, prefix or prompt.
  lora_shapes: lora.Shapes = ()
  lora_rank: int = 8
  lora_alpha: float = 16.0
  lora_dropout: float = 0.0
  prefix_length: int = 16
  prefix_hidden: int = 0
  prompt_length: int = 16

  @property
  def config(self):
    return self.base.config

  def setup(self):
    nn.share_scope(self, self.base)
    c = self.base.config
    kv_heads, layers = c.num_kv_heads or c.num_heads, num_layers(c)
    if self.method == "lora":
      self.lora = self.param(lora.NAME, lambda key: lora.init(key, self.lora_shapes,
                                                              self.lora_rank))
      self.lora_input_dropout = nn.Dropout(self.lora_dropout)
    elif self.method == PREFIX:
      entry = (layers, self.prefix_length, kv_heads, c.head_dim)
      if self.prefix_hidden:
        self.prefix_table = self.param("prefix_table", initializers.kernel(("length", "embed")),
                                       (self.prefix_length, c.model_dim))
        self.prefix_in = Projection(output_shape=(self.prefix_hidden,),
                                    kernel_axes=("embed", "mlp"), use_bias=True)
        self.prefix_out = Projection(output_shape=(2,) + entry[:1] + entry[2:],
                                     kernel_axes=("mlp", "adapter", "layers", "kv_heads",
                                                  "head_dim"), use_bias=True)
      else:
        self.prefix = self.param(PREFIX, lambda key: {
            "keys": 0.02 * jax.random.normal(jax.random.fold_in(key, 0), entry),
            "values": 0.02 * jax.random.normal(jax.random.fold_in(key, 1), entry)})
    elif self.method == PROMPT:
      # Replaced, after the base is loaded, by embeddings of vocabulary tokens (prompt.py).
      self.prompt = self.param(PROMPT, initializers.kernel(("length", "embed")),
                               (self.prompt_length, c.model_dim))

  def prefix_entries(self) -> dict:
    """{keys, values} [L, P, G, K] of the prefix method (through the MLP when reparametrised)."""
    if not self.prefix_hidden:
      return self.prefix
    hidden = jnp.tanh(self.prefix_in(self.prefix_table))  # [P, hidden]
    entries = self.prefix_out(hidden)  # [P, 2, L, G, K]
    entries = jnp.moveaxis(entries, (1, 2), (0, 1))  # [2, L, P, G, K]
    return {"keys": entries[0], "values": entries[1]}

  def _prompt_prefix(self, batch: int) -> list[PrefixKV]:
    """The soft prompt's own keys and values per layer (positions 0 .. P-1), from one pass
    of the base over the prompt alone."""
    length = self.prompt_length
    cache = kv_cache.init(self.base.config, 1, length)
    out = self.base(jnp.zeros((1, 0), jnp.int32), deterministic=True,
                    prompt_embeddings=self.prompt[None], cache=cache)
    return [PrefixKV(keys=layer.self_attention.keys, values=layer.self_attention.values)
            for layer in out.cache.layers]

  def __call__(self, *args, **kwargs):
    deterministic = kwargs["deterministic"]
    if self.method == PREFIX:
      entries = self.prefix_entries()
      kwargs["prefix"] = [PrefixKV(keys=entries["keys"][i][None], values=entries["values"][i][None])
                          for i in range(entries["keys"].shape[0])]
    elif self.method == PROMPT:
      cache = kwargs.get("cache")
      if cache is None:
        kwargs["prompt_embeddings"] = self.prompt[None]
      else:
        tokens = args[0]
        kwargs["prefix"] = self._prompt_prefix(tokens.shape[0])
        positions = kwargs.get("positions")
        if positions is None:
          positions = jnp.arange(tokens.shape[1])[None] + cache.index
        kwargs["positions"] = positions + self.prompt_length
    if self.method != "lora":
      return self.base(*args, **kwargs)
    dropout = None
    if self.lora_dropout and not deterministic:
      dropout = lambda x: self.lora_input_dropout(x, deterministic=False)
    scale = self.lora_alpha / self.lora_rank
    with nn.intercept_methods(lora.interceptor(self.lora, scale, dropout)):
      return self.base(*args, **kwargs)


def fold_prefix(params: Any, model: Adapted) -> Any:
  """Parameters with a reparametrised prefix replaced by its plain entries (export)."""
  entries = model.apply({"params": params}, method=Adapted.prefix_entries)
  folded = {k: v for k, v in params.items()
            if k not in ("prefix_table", "prefix_in", "prefix_out")}
  folded[PREFIX] = jax.tree_util.tree_map(jnp.asarray, entries)
  return folded
