"""Pretraining objectives: how a model's outputs on a batch become a loss and metrics."""
