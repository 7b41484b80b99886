"""Input embeddings shared by every family: token (+ position) (+ token type).

`embed` is called inside a parent module's compact method, so the tables it
creates (position_embedding, token_type_embedding, embedding_norm) are that
parent's parameters: a GPT keeps GPT-2's parameter names.
"""

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.configuration import ModelConfig
from transformer_jax.models import initializers
from transformer_jax.models.block import norm
from transformer_jax.models.positions import sinusoidal_embedding


def token_embedding(config: ModelConfig, name: str = "token_embedding") -> nn.Embed:
  """The [V, D] table; its `attend` is the tied output projection."""
  return nn.Embed(config.vocab_size, config.model_dim, dtype=config.dtype, name=name,
                  embedding_init=initializers.kernel(("vocab", "embed")))


def embed(config: ModelConfig, table: nn.Embed, tokens: jax.Array, positions: jax.Array, *,
          deterministic: bool, token_types: Optional[jax.Array] = None) -> jax.Array:
  """tokens [B, T], positions [B|1, T], token_types [B, T] -> x [B, T, D] after dropout.

  model.scale_embeddings multiplies token embeddings by √D (Vaswani et al., whose
  sinusoids have unit amplitude); model.num_token_types > 0 adds BERT's segment
  (A/B) embeddings; model.embedding_norm normalises the sum, as BERT does.
  """
  c = config
  x = table(tokens)
  if c.scale_embeddings:
    x = x * jnp.asarray(c.model_dim**0.5, x.dtype)
  if c.position == "learned":
    x = x + nn.Embed(c.max_length, c.model_dim, dtype=c.dtype, name="position_embedding",
                     embedding_init=initializers.kernel(("length", "embed")))(positions)
  elif c.position == "sinusoidal":
    x = x + sinusoidal_embedding(jnp.broadcast_to(positions, tokens.shape),
                                 c.model_dim).astype(x.dtype)
  if c.num_token_types:
    if token_types is None:
      token_types = jnp.zeros_like(tokens)
    x = x + nn.Embed(c.num_token_types, c.model_dim, dtype=c.dtype,
                     name="token_type_embedding",
                     embedding_init=initializers.kernel(("token_types", "embed")))(token_types)
  if c.embedding_norm:
    x = norm(c, "embedding_norm")(x)
  return nn.Dropout(c.dropout_rate)(x, deterministic=deterministic)
