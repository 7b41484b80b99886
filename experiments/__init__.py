"""Experiments that compose the library: benchmarks, baselines, the fine-tuning tables and
the notebooks. The experiments launch.py runs (config.experiment) live in
transformer_jax/tasks/."""
