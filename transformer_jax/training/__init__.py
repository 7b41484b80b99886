"""Optimizers, sharded train steps, checkpoints, metrics and the training loop."""
