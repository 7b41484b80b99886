"""Input embeddings shared by every family: token (+ position) (+ token type).

`Embedding` is the [V, D] token table; its `attend` is the tied output
projection, a weight matmul like every `Projection` (see projection.py). `embed`
is called inside a parent module's compact method, so the tables it creates
(position_embedding, token_type_embedding, embedding_norm) are that parent's
parameters: a GPT keeps GPT-2's parameter names.
"""

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.config_sections import ModelConfig
from transformer_jax.models import initializers, precision
from transformer_jax.models.block import norm
from transformer_jax.models.positions import sinusoidal_embedding
from transformer_jax.models.projection import weight_dot


class Embedding(nn.Module):
  """A [num_embeddings, features] table: rows by id, and the tied output projection."""
  num_embeddings: int
  features: int
  logical_axes: tuple[str, str] = ("vocab", "embed")
  dtype: Any = jnp.float32
  param_dtype: Any = precision.PARAMETERS

  def setup(self):
    self.embedding = self.param(
        "embedding", initializers.kernel(self.logical_axes),
        (self.num_embeddings, self.features), self.param_dtype)

  def __call__(self, ids: jax.Array) -> jax.Array:
    """ids [...] int -> [..., features] in dtype."""
    return jnp.take(self.embedding.astype(self.dtype), ids, axis=0)

  def attend(self, x: jax.Array) -> jax.Array:
    """x [..., features] -> [..., num_embeddings]: x · tableᵀ (the tied output projection)."""
    return self.dot(x, self.embedding.T)

  def dot(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    """x [..., features] · kernel [features, num_embeddings]: the replaceable weight matmul."""
    return weight_dot(x, kernel, self.dtype)


def token_embedding(config: ModelConfig, name: str = "token_embedding") -> Embedding:
  """The [V, D] token table."""
  return Embedding(num_embeddings=config.vocab_size, features=config.model_dim,
                   dtype=config.dtype, name=name)


def slot_positions(num_prompt: int, num_tokens: int, positions: Optional[jax.Array],
                   start: jax.Array | int = 0) -> jax.Array:
  """[B|1, P + T]: prompt slots at 0 .. P - 1, then the tokens' positions shifted by P.

  positions [B, T] or None (the tokens are at start .. start + T - 1).
  """
  if positions is None:
    return jnp.arange(num_prompt + num_tokens)[None] + start
  if not num_prompt:
    return positions
  prompt = jnp.broadcast_to(jnp.arange(num_prompt)[None], (positions.shape[0], num_prompt))
  return jnp.concatenate([prompt, positions + num_prompt], axis=1)


def embed(config: ModelConfig, table: Embedding, tokens: jax.Array, positions: jax.Array, *,
          deterministic: bool, token_types: Optional[jax.Array] = None,
          prompt_embeddings: Optional[jax.Array] = None) -> jax.Array:
  """tokens [B, T] -> x [B, P + T, D] after dropout (P = 0 without prompt embeddings).

  positions [B|1, P + T]: the position of every slot, prompt embeddings first.
  token_types [B, T]: BERT's segments A/B (the prompt slots get type 0).
  prompt_embeddings [B|1, P, D]: vectors placed before the tokens' embeddings
  (soft prompts); everything after the table lookup (scaling, positions, token
  types, the embedding norm, dropout) treats them as tokens.
  model.scale_embeddings multiplies token embeddings by √D (Vaswani et al., whose
  sinusoids have unit amplitude); model.num_token_types > 0 adds BERT's segment
  (A/B) embeddings; model.embedding_norm normalises the sum, as BERT does.
  """
  c = config
  x = table(tokens)
  if prompt_embeddings is not None:
    prompt = jnp.broadcast_to(prompt_embeddings.astype(x.dtype),
                              (x.shape[0],) + prompt_embeddings.shape[1:])
    x = jnp.concatenate([prompt, x], axis=1)
  if c.scale_embeddings:
    x = x * jnp.asarray(c.model_dim**0.5, x.dtype)
  if c.position == "learned":
    x = x + Embedding(num_embeddings=c.max_length, features=c.model_dim,
                      logical_axes=("length", "embed"), dtype=c.dtype,
                      name="position_embedding")(positions)
  elif c.position == "sinusoidal":
    x = x + sinusoidal_embedding(jnp.broadcast_to(positions, x.shape[:2]),
                                 c.model_dim).astype(x.dtype)
  if c.num_token_types:
    if token_types is None:
      token_types = jnp.zeros_like(tokens)
    num_prompt = x.shape[1] - tokens.shape[1]
    token_types = jnp.pad(token_types, ((0, 0), (num_prompt, 0)))
    x = x + Embedding(num_embeddings=c.num_token_types, features=c.model_dim,
                      logical_axes=("token_types", "embed"), dtype=c.dtype,
                      name="token_type_embedding")(token_types)
  if c.embedding_norm:
    x = norm(c, "embedding_norm")(x)
  return nn.Dropout(c.dropout_rate)(x, deterministic=deterministic)
