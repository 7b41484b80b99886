"""transformer_jax.evaluation.bleu: sacrebleu's corpus BLEU with the tokenization chosen."""

import pytest

from transformer_jax.evaluation import bleu


def test_identical_text_scores_100():
  references = ["the cat sat on the mat .", "a dog ran ."]
  assert bleu.corpus_bleu(references, references) == pytest.approx(100.0)


def test_chinese_references_choose_zh_tokenization():
  assert bleu.tokenization_for(["我是学生。"]) == "zh"
  assert bleu.tokenization_for(["I am a student."]) == "13a"
  assert bleu.tokenization_for(["I am a student.", "他很累。"]) == "zh"


def test_chinese_scores_by_character():
  # Under '13a' the unspaced sentence is one word and any difference scores 0; under
  # 'zh' each character is a word, and most n-grams are shared.
  references = ["我是一个学生。"]
  assert bleu.corpus_bleu(["我是一个学生。"], references) == pytest.approx(100.0)
  partly = bleu.corpus_bleu(["我是一个老师。"], references)
  assert 0 < partly < 100


def test_disjoint_text_scores_0():
  assert bleu.corpus_bleu(["x y z w"], ["a b c d"]) == 0.0


def test_counts_must_match():
  with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
    bleu.corpus_bleu(["a", "b"], ["a"])
