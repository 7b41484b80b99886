"""Tokenizers: one protocol (`tokenizer.py`) for character, byte-level BPE and WordPiece
vocabularies, and the special tokens every objective names alike."""
