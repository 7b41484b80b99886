"""Smaller models for inference: int8 weight-only matmuls."""
