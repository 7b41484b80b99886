"""transformer_jax: Transformer language models in JAX/Flax.

Axis legend used in shape annotations throughout the package:
  B batch, T length (query), S length (key/value), D model width,
  H heads, K head dim, F MLP hidden width, V vocabulary, L layers.
"""

__version__ = "0.1.0"
