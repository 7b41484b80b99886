"""Each task's data assembled from `data.*`: a tokenizer, training batches by step and
evaluation batches (the `TaskData` protocol, `task_data.py`)."""
