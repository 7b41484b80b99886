"""Bidirectional Transformer encoder: BERT's body and the encoder of an encoder-decoder.

tokens [B, S] -> ModelOutput (hidden states [B, S, D], no logits). Every position
sees every real position of its own segment; padding (segment id 0) is seen by none.
"""

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.config_sections import ModelConfig
from transformer_jax.models import embedding, initializers, layer_stack
from transformer_jax.models.attention import PrefixKV, prompt_segment_mask, segment_mask
from transformer_jax.models.block import norm
from transformer_jax.models.outputs import ModelOutput, stack_layer_weights


class Encoder(nn.Module):
  """num_layers: model.num_encoder_layers, else model.num_layers.

  shared_embedding: a table owned by the parent (BERT ties it to its MLM output;
  an encoder-decoder may share it with the decoder); else the encoder owns one.
  """
  config: ModelConfig
  shared_embedding: Optional[nn.Module] = None

  @nn.compact
  def __call__(self, tokens: jax.Array, *, deterministic: bool,
               segment_ids: Optional[jax.Array] = None,
               token_types: Optional[jax.Array] = None,
               positions: Optional[jax.Array] = None,
               prompt_embeddings: Optional[jax.Array] = None,
               prefix: Optional[Sequence[PrefixKV]] = None,
               return_attention_weights: bool = False) -> ModelOutput:
    """segment_ids [B, S]: 0 marks padding, equal ids attend to each other (packing).

    token_types [B, S]: BERT's sentence A (0) / B (1); positions [B, S].
    prompt_embeddings [B|1, P, D], prefix and return_attention_weights: as for
    `Decoder`; the prompt slots see, and are seen by, every real token.
    """
    c = self.config
    num_layers = c.num_encoder_layers or c.num_layers
    num_prompt = 0 if prompt_embeddings is None else prompt_embeddings.shape[1]
    slots = embedding.slot_positions(num_prompt, tokens.shape[1], positions)
    table = (self.shared_embedding if self.shared_embedding is not None
             else embedding.token_embedding(c))
    x = initializers.constrain_hidden(embedding.embed(
        c, table, tokens, slots, deterministic=deterministic, token_types=token_types,
        prompt_embeddings=prompt_embeddings))
    mask = None
    if segment_ids is not None:
      mask = (prompt_segment_mask(segment_ids, num_prompt) if num_prompt
              else segment_mask(segment_ids))
    x, outputs = layer_stack.run_blocks(
        c, num_layers, x, mask, deterministic=deterministic,
        positions=jnp.broadcast_to(slots, x.shape[:2]), prefix=prefix,
        return_attention_weights=return_attention_weights,
        constrain=initializers.constrain_hidden)
    if c.norm_position == "pre":
      x = norm(c, "final_norm")(x)
    return ModelOutput(hidden_states=x[:, num_prompt:],
                       attention_weights=stack_layer_weights(
                           [o.attention_weights for o in outputs], num_prompt))
