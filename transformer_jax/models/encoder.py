"""Bidirectional Transformer encoder: BERT's body and the encoder of an encoder-decoder.

tokens [B, S] -> hidden states [B, S, D]. Every position sees every real
position of its own segment; padding (segment id 0) is seen by none.
"""

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.configuration import ModelConfig
from transformer_jax.models import embedding
from transformer_jax.models.attention import segment_mask
from transformer_jax.models.block import TransformerBlock, norm


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
               positions: Optional[jax.Array] = None) -> jax.Array:
    """segment_ids [B, S]: 0 marks padding, equal ids attend to each other (packing).

    token_types [B, S]: BERT's sentence A (0) / B (1); positions [B, S].
    """
    c = self.config
    num_layers = c.num_encoder_layers or c.num_layers
    if positions is None:
      positions = jnp.arange(tokens.shape[1])[None]
    table = (self.shared_embedding if self.shared_embedding is not None
             else embedding.token_embedding(c))
    x = embedding.embed(c, table, tokens, positions, deterministic=deterministic,
                        token_types=token_types)
    mask = None if segment_ids is None else segment_mask(segment_ids)
    block_positions = jnp.broadcast_to(positions, tokens.shape)
    for i in range(num_layers):
      x = TransformerBlock(c, num_layers, name=f"block_{i}")(
          x, mask, deterministic=deterministic, positions=block_positions)
    if c.norm_position == "pre":
      x = norm(c, "final_norm")(x)
    return x
