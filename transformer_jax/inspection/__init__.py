"""Looking inside trained models: attention maps."""
