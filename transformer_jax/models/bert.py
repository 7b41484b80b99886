"""BERT for pretraining: an encoder with a masked-LM head and a next-sentence head.

Heads as in Devlin et al. (2019) and the reference implementation:
  MLM: dense D->D, GELU, LayerNorm, then the token embedding transposed (tied)
       plus a per-token output bias: logits [B, T, V].
  NSP: the pooler (dense D->D, tanh) on the first token (<cls>), then dense D->2.
Classification fine-tuning reuses `encoder` and `pooler` under the same names.
"""

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.configuration import ModelConfig
from transformer_jax.models import embedding, initializers
from transformer_jax.models.encoder import Encoder
from transformer_jax.models.normalization import make_norm
from transformer_jax.models.projection import Projection


class BertPretraining(nn.Module):
  """(tokens, token_types, segment_ids) -> {'mlm_logits' [B, T, V], 'nsp_logits' [B, 2]}.

  Both float32. Label 1 of the NSP logits means "B follows A".
  """
  config: ModelConfig

  @nn.compact
  def __call__(self, tokens: jax.Array, *, deterministic: bool,
               token_types: Optional[jax.Array] = None,
               segment_ids: Optional[jax.Array] = None) -> dict[str, jax.Array]:
    c = self.config
    table = embedding.token_embedding(c)
    hidden = Encoder(c, shared_embedding=table, name="encoder")(
        tokens, deterministic=deterministic, segment_ids=segment_ids, token_types=token_types)
    def dense(features, names, name):
      return Projection((features,), names, use_bias=True, dtype=c.dtype, name=name)

    h = nn.gelu(dense(c.model_dim, ("embed", "mlp"), "mlm_transform")(hidden),
                approximate=False)
    h = make_norm(c.norm, epsilon=1e-5, use_bias=True, dtype=c.dtype, name="mlm_norm")(h)
    output_bias = self.param("mlm_output_bias", initializers.bias(("vocab",)),
                             (c.vocab_size,), jnp.float32)
    mlm_logits = table.attend(h).astype(jnp.float32) + output_bias
    pooled = jnp.tanh(dense(c.model_dim, ("embed", "mlp"), "pooler")(hidden[:, 0]))
    nsp_logits = dense(2, ("embed", "classes"), "next_sentence")(pooled)
    return {"mlm_logits": mlm_logits, "nsp_logits": nsp_logits.astype(jnp.float32)}
