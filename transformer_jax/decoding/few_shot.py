"""Few-shot prompts for a decoder-only model: worked examples before the prompt, no training.

A shot is a (prompt, completion) pair in the same token template as supervised
fine-tuning (`data/tasks/sft_data.py`): `prompt <eos> completion <eos>`. A few-shot
prompt is the shots in order, then the prompt itself and its <eos>, after which the
model writes the completion:

    shot1_prompt <eos> shot1_completion <eos> ... prompt <eos>

The template is made of token ids, never of strings. When the context has no room
for every shot, whole shots are left out from the first one on (the prompt always
stays whole unless it alone overflows, then it keeps its last tokens). The shots
themselves are chosen by the task (sft: `sft_data.choose_shots`).
"""

from __future__ import annotations

from typing import Sequence


def prompt_ids(shots: Sequence[tuple[Sequence[int], Sequence[int]]], prompt: Sequence[int],
               eos: int, room: int) -> tuple[list[int], bool]:
  """(token ids of the few-shot prompt, whether anything was left out to fit `room`).

  shots: (prompt ids, completion ids) of each shot, encoded without <eos>."""
  ids = list(prompt) + [eos]
  if len(ids) > room:
    return ids[-room:], True
  for shot_prompt, shot_completion in reversed(shots):
    shot = list(shot_prompt) + [eos] + list(shot_completion) + [eos]
    if len(shot) + len(ids) > room:
      return ids, True
    ids = shot + ids
  return ids, False
