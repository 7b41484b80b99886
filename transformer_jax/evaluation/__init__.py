"""Scores of decoded text against references (BLEU)."""
