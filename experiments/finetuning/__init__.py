"""Scripts that run the fine-tuning results of experiments/README.md."""
