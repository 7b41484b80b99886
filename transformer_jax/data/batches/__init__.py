"""Rows and batches: chunking, packing, token-stream windows, masking and sentence pairs,
each batch a pure function of (seed, step)."""
