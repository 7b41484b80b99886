"""How a Hugging Face tensor becomes this project's parameters, and back: one `Rule` each.

A family module (hf_gpt2, hf_bert) lists its rules for a model shape. A rule names one
Hugging Face tensor (without the model's prefix, such as 'transformer.' or 'bert.'),
its shape, and the parameter paths it fills, with the two conversions, so import and
export read one table both ways. This project's kernels are [in, *out]; torch's
Linear stores [out, in], GPT-2's Conv1D [in, out].
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

Arrays = tuple[np.ndarray, ...]


@dataclasses.dataclass(frozen=True)
class Rule:
  hf: str  # The tensor's name after the model prefix, e.g. 'h.0.attn.c_attn.weight'.
  shape: tuple[int, ...]  # Its shape in a model of the run's config.
  ours: tuple[str, ...]  # The parameter paths it fills.
  to_ours: Callable[[np.ndarray], Arrays]
  to_hf: Callable[[Arrays], np.ndarray]
  head: bool = False  # Named without the model prefix (GPT-2's lm_head, BERT's cls.*).
  # Export of a model without these parameters (no biases): zeros do what they did.
  zeros_when_absent: bool = False


def same(hf: str, ours: str, shape: tuple[int, ...], **options) -> Rule:
  """The tensor is the parameter."""
  return Rule(hf, tuple(shape), (ours,), lambda w: (w,), lambda arrays: arrays[0], **options)


def reshaped(hf: str, ours: str, hf_shape: tuple[int, ...], our_shape: tuple[int, ...],
             **options) -> Rule:
  """The same values in another shape (heads split or merged)."""
  return Rule(hf, tuple(hf_shape), (ours,), lambda w: (w.reshape(our_shape),),
              lambda arrays: arrays[0].reshape(hf_shape), **options)


def transposed(hf: str, ours: str, hf_shape: tuple[int, int], our_shape: tuple[int, ...],
               **options) -> Rule:
  """torch Linear [out, in] <-> kernel [in, *out] or [*in, out]."""
  out_size, in_size = hf_shape
  return Rule(hf, tuple(hf_shape), (ours,), lambda w: (w.T.reshape(our_shape),),
              lambda arrays: arrays[0].reshape(in_size, out_size).T, **options)


def bias(hf: str, ours: str, our_shape: tuple[int, ...], **options) -> Rule:
  """A bias or a LayerNorm offset, stored flat; zeros for a model without biases."""
  size = int(np.prod(our_shape))
  return Rule(hf, (size,), (ours,), lambda w: (w.reshape(our_shape),),
              lambda arrays: arrays[0].reshape(size), zeros_when_absent=True, **options)
