"""transformer_jax: Transformer language models in JAX/Flax.

  import transformer_jax as tj
  lm = tj.load("runs/clm")            # a workdir, an exported folder or hf:DIR
  lm.generate(["ROMEO:"]); lm.score(["To be, or not to be"])
See transformer_jax/tasks/loading.py and loaded_model.py.

Axis legend used in shape annotations throughout the package:
  B batch, T length (queries), S length (keys/values, a source), D model width,
  H heads, G key/value heads, K head dim, F MLP hidden width, V vocabulary,
  L layers, C cache slots, P prompt embeddings or prefix entries.
"""

__version__ = "0.1.0"

__all__ = ["LoadedModel", "load"]


def __getattr__(name):
  """`transformer_jax.load` and `LoadedModel`, imported on first use (importing the
  package itself starts nothing: no JAX backend, no experiment)."""
  if name in __all__:
    from transformer_jax.tasks import loaded_model, loading  # pylint: disable=import-outside-toplevel
    return {"load": loading.load, "LoadedModel": loaded_model.LoadedModel}[name]
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
