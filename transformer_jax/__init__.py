"""transformer_jax: Transformer language models in JAX/Flax.

Axis legend used in shape annotations throughout the package:
  B batch, T length (queries), S length (keys/values, a source), D model width,
  H heads, G key/value heads, K head dim, F MLP hidden width, V vocabulary,
  L layers, C cache slots, P prompt embeddings or prefix entries.
"""

__version__ = "0.1.0"
