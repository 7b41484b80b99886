"""Other formats in and out: Hugging Face GPT-2 and BERT folders, the project's own export."""
