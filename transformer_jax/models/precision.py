"""The mixed-precision policy, written down once: what `model.dtype` changes and what not.

`model.dtype` is the computation dtype: embeddings are looked up in it and every
weight matmul (`projection.weight_dot`) casts its input and kernel to it, so with
bfloat16 the matmuls, the residual stream and the MLP run in bfloat16. Everything
whose precision decides the result stays float32 (`ACCUMULATION`):
  - parameters, their gradients and the optimizer state (params are created in
    `PARAMETERS`; an update to a bfloat16 copy would round small steps away);
  - attention scores and their softmax (`attention_scores` casts the scores up
    before masking and normalising; the mixing weights go back to model.dtype);
  - normalisation statistics (LayerNorm's mean and variance, RMSNorm's mean square);
  - rotary and sinusoidal angles (bfloat16 angles lose whole turns at long positions);
  - logits, the loss and every metric (the models return float32 logits).
float16 needs loss scaling to train, which this codebase does not do: it is refused
for training (`transformer_jax/run/train.py`) and allowed for evaluation and decoding.
"""

import jax.numpy as jnp

PARAMETERS = jnp.float32  # Stored parameters (Projection, Embedding, norms' scales).
ACCUMULATION = jnp.float32  # Scores, softmax, statistics, logits, loss.
