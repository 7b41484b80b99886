"""Corpus BLEU through sacrebleu, with the tokenization the target language needs.

Why a wrapper: BLEU numbers are only comparable under one tokenization, and
sacrebleu's default ('13a') splits on spaces and punctuation, so a Chinese
sentence (no spaces) would count as one or two "words". sacrebleu's 'zh'
tokenizer splits CJK characters apart, as WMT's Chinese scores do. The choice
is made from the references, so callers need not know the language.
"""

from __future__ import annotations

import re
from typing import Sequence

import sacrebleu

# CJK Unified Ideographs (and Extension A), CJK symbols and punctuation, full-width forms.
_CJK = re.compile("[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")


def tokenization_for(references: Sequence[str]) -> str:
  """'zh' when any reference holds a CJK character, else sacrebleu's default '13a'."""
  return "zh" if any(_CJK.search(reference) for reference in references) else "13a"


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
  """BLEU in [0, 100] of one hypothesis per reference (one reference each)."""
  if len(hypotheses) != len(references):
    raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
  return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)],
                                     tokenize=tokenization_for(references)).score)
