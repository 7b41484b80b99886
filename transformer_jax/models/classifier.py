"""Sequence classifiers on the encoder (BERT) and decoder (GPT) bodies.

  EncoderClassifier   BERT's recipe: the pooler (dense D->D, tanh) on the first token
                      (<cls>), dropout, then `classifier` D->C. Body and pooler carry
                      BertPretraining's names (token_embedding, encoder/..., pooler), so
                      a pretrained BERT warm-starts them and only the head is new.
  DecoderClassifier   GPT-style: the decoder's final hidden state at each row's last real
                      token (the rows end in <eos>), then `classifier` D->C. The decoder
                      shares this module's scope, so its parameters keep a GPT's names.
model.classifier_pooling=mean reads the mean of every real token's hidden state instead of
the one token (<cls>, or the last); the parameters are the same either way.
tokens [B, T], segment_ids [B, T] (1 real, 0 padding) -> ModelOutput(logits [B, C] float32,
hidden_states [B, T, D]). Prompt embeddings and prefix entries pass to the body.
"""

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.config_sections import ModelConfig
from transformer_jax.models import embedding, precision
from transformer_jax.models.attention import PrefixKV
from transformer_jax.models.decoder import Decoder
from transformer_jax.models.encoder import Encoder
from transformer_jax.models.outputs import ModelOutput
from transformer_jax.models.projection import Projection

HEAD = "classifier"  # The task head's name: what finetune.method=head trains.


def _pool(config: ModelConfig, hidden: jax.Array, segment_ids: Optional[jax.Array],
          token: jax.Array) -> jax.Array:
  """hidden [B, T, D] -> [B, D]: the hidden state at `token` [B], or the real tokens' mean."""
  if config.classifier_pooling == "token":
    return jnp.take_along_axis(hidden, token[:, None, None], axis=1)[:, 0]
  real = (segment_ids != 0)[..., None].astype(jnp.float32)  # [B, T, 1]; sums in float32.
  return jnp.sum(hidden * real, axis=1) / jnp.maximum(jnp.sum(real, axis=1), 1)


def _head(config: ModelConfig, num_classes: int, **name) -> Projection:
  return Projection(output_shape=(num_classes,), kernel_axes=("embed", "classes"),
                    use_bias=True, dtype=config.dtype, **name)


class EncoderClassifier(nn.Module):
  config: ModelConfig
  num_classes: int

  @nn.compact
  def __call__(self, tokens: jax.Array, *, deterministic: bool,
               segment_ids: Optional[jax.Array] = None,
               token_types: Optional[jax.Array] = None,
               prompt_embeddings: Optional[jax.Array] = None,
               prefix: Optional[Sequence[PrefixKV]] = None,
               return_attention_weights: bool = False) -> ModelOutput:
    c = self.config
    table = embedding.token_embedding(c)
    encoded = Encoder(config=c, shared_embedding=table, name="encoder")(
        tokens, deterministic=deterministic, segment_ids=segment_ids, token_types=token_types,
        prompt_embeddings=prompt_embeddings, prefix=prefix,
        return_attention_weights=return_attention_weights)
    if segment_ids is None:
      segment_ids = jnp.ones_like(tokens)
    first = jnp.zeros(tokens.shape[:1], jnp.int32)  # [B]: <cls>.
    pooled = jnp.tanh(Projection(output_shape=(c.model_dim,), kernel_axes=("embed", "mlp"),
                                 use_bias=True, dtype=c.dtype, name="pooler")(
                                     _pool(c, encoded.hidden_states, segment_ids, first)))
    pooled = nn.Dropout(c.dropout_rate)(pooled, deterministic=deterministic)
    logits = _head(c, self.num_classes, name=HEAD)(pooled).astype(precision.ACCUMULATION)
    return ModelOutput(hidden_states=encoded.hidden_states, logits=logits,
                       attention_weights=encoded.attention_weights)


class DecoderClassifier(nn.Module):
  config: ModelConfig
  num_classes: int

  def setup(self):
    self.decoder = Decoder(config=self.config)
    nn.share_scope(self, self.decoder)  # A GPT's parameter names, plus the head.
    self.classifier = _head(self.config, self.num_classes)  # Named HEAD.

  def __call__(self, tokens: jax.Array, *, deterministic: bool,
               segment_ids: Optional[jax.Array] = None,
               prompt_embeddings: Optional[jax.Array] = None,
               prefix: Optional[Sequence[PrefixKV]] = None,
               return_attention_weights: bool = False) -> ModelOutput:
    out = self.decoder(tokens, deterministic=deterministic, segment_ids=segment_ids,
                       prompt_embeddings=prompt_embeddings, prefix=prefix,
                       last_logits_only=True, return_attention_weights=return_attention_weights)
    if segment_ids is None:
      segment_ids = jnp.ones_like(tokens)
    last = jnp.sum(segment_ids != 0, axis=1) - 1  # [B]: the row's last real token.
    pooled = _pool(self.config, out.hidden_states, segment_ids, last)
    logits = self.classifier(pooled).astype(precision.ACCUMULATION)
    return ModelOutput(hidden_states=out.hidden_states, logits=logits,
                       attention_weights=out.attention_weights)
