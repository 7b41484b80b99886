"""Autoregressive decoding: loops that see only a `step_fn`, and small samplers."""
