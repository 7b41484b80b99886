"""Corpora and files: reading, cleaning and splitting text, named datasets (the catalog,
checked downloads) and labelled text."""
