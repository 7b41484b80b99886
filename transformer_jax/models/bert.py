"""BERT for pretraining: an encoder with a masked-LM head and a next-sentence head.

Heads as in Devlin et al. (2019) and the reference implementation:
  MLM: dense D->D, GELU, LayerNorm (model.norm_epsilon), then the token embedding
       transposed (tied) plus a per-token output bias: logits [B, T, V].
  NSP: the pooler (dense D->D, tanh) on the first token (<cls>), then dense D->2.
Classification fine-tuning reuses `encoder` and `pooler` under the same names.
"""

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.config_sections import ModelConfig
from transformer_jax.models import embedding, initializers, precision
from transformer_jax.models.attention import PrefixKV
from transformer_jax.models.encoder import Encoder
from transformer_jax.models.normalization import make_norm
from transformer_jax.models.outputs import ModelOutput
from transformer_jax.models.projection import Projection


class BertPretraining(nn.Module):
  """(tokens, token_types, segment_ids) -> ModelOutput: logits [B, T, V] of the masked-LM
  head, next_sentence_logits [B, 2] (1 means "B follows A"), both float32; hidden_states
  [B, T, D] are the encoder's.
  """
  config: ModelConfig

  @nn.compact
  def __call__(self, tokens: jax.Array, *, deterministic: bool,
               token_types: Optional[jax.Array] = None,
               segment_ids: Optional[jax.Array] = None,
               prompt_embeddings: Optional[jax.Array] = None,
               prefix: Optional[Sequence[PrefixKV]] = None,
               return_attention_weights: bool = False) -> ModelOutput:
    c = self.config
    table = embedding.token_embedding(c)
    encoded = Encoder(config=c, shared_embedding=table, name="encoder")(
        tokens, deterministic=deterministic, segment_ids=segment_ids, token_types=token_types,
        prompt_embeddings=prompt_embeddings, prefix=prefix,
        return_attention_weights=return_attention_weights)
    hidden = encoded.hidden_states
    def dense(features, names, name):
      return Projection(output_shape=(features,), kernel_axes=names, use_bias=True,
                        dtype=c.dtype, name=name)

    # The MLP's GELU (exact, or tanh with model.activation=gelu_tanh); other activations
    # keep the exact GELU of BERT's head.
    h = nn.gelu(dense(c.model_dim, ("embed", "mlp"), "mlm_transform")(hidden),
                approximate=c.activation == "gelu_tanh")
    h = make_norm(c.norm, epsilon=c.norm_epsilon, use_bias=True, dtype=c.dtype,
                  name="mlm_norm")(h)
    output_bias = self.param("mlm_output_bias", initializers.bias(("vocab",)),
                             (c.vocab_size,), precision.PARAMETERS)
    mlm_logits = table.attend(h).astype(precision.ACCUMULATION) + output_bias
    pooled = jnp.tanh(dense(c.model_dim, ("embed", "mlp"), "pooler")(hidden[:, 0]))
    nsp_logits = dense(2, ("embed", "classes"), "next_sentence")(pooled)
    return ModelOutput(hidden_states=hidden, logits=mlm_logits,
                       attention_weights=encoded.attention_weights,
                       next_sentence_logits=nsp_logits.astype(precision.ACCUMULATION))
