"""The special tokens an objective may need, named once so every tokenizer spells them alike.

A tokenizer gives the special tokens it is asked for the ids it documents (the first
ids for BPE, the ids after the characters for the character tokenizer); objectives
then look them up with `tokenizer.token_id(EOS)` instead of hard-coding ids.
"""

from __future__ import annotations

from typing import Sequence

PAD = "<pad>"  # Fills sequences up to a common length; masked out of the loss.
BOS = "<bos>"  # Starts a sequence.
EOS = "<eos>"  # Ends a document, so packed documents stay apart.
UNK = "<unk>"  # Stands for text a vocabulary cannot spell (never needed by byte-level BPE).
MASK = "<mask>"  # Hides a token for masked language modelling.
CLS = "<cls>"  # Summarises a sequence for classification.
SEP = "<sep>"  # Separates two segments of one sequence.

ALL = (PAD, BOS, EOS, UNK, MASK, CLS, SEP)


def validate(requested: Sequence[str]) -> tuple[str, ...]:
  """The requested tokens, in the requested order (their ids follow it), once each.

  Raises ValueError naming `data.special_tokens` for a token not in `ALL` or one
  asked for twice, so a typo in a config fails before a tokenizer is trained.
  """
  if isinstance(requested, str):
    raise ValueError(f"data.special_tokens must be a list of tokens, not the string {requested!r}")
  for token in requested:
    if token not in ALL:
      raise ValueError(
          f"data.special_tokens: unknown token {token!r}; choose from {', '.join(ALL)}")
  if len(set(requested)) != len(requested):
    raise ValueError(f"data.special_tokens: tokens repeated in {list(requested)}")
  return tuple(requested)
