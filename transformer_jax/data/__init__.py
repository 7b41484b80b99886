"""Corpora, tokenizers, batches and each task's data (see the sub-packages)."""
