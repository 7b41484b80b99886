"""Autoregressive decoding: loops that see only a `step_fn`, and small strategies.

kv_decoding (prefill + while_loop over a KV cache), model_steps (step functions
and whole decodes for Decoder and EncoderDecoder), samplers (greedy, temperature,
top-k, top-p), beam_search (GNMT-scored n-best), generate (uncached sliding window),
translator (sentences in, translations out, for an EncoderDecoder).
"""
