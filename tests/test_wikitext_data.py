"""WikiText-2: its layout, its own splits in the clm and mlm builders, word-level perplexity.

A tiny WikiText-shaped dataset stands in for the catalog's entry (same layout, its own
checksums) wherever the real one would make a test slow; the real files are read
only to check the published word counts.
"""

import dataclasses
import gzip
import hashlib
import math

import numpy as np
import pytest

from conftest import SHARED_DATA, tiny_config
from transformer_jax.tasks import clm as clm_experiment
from transformer_jax.data.corpora import catalog, wikitext
from transformer_jax.data.tasks import lm_data, mlm_data
from transformer_jax.data.tokenizers import special_tokens
from transformer_jax.run import tokenizers
from transformer_jax.errors import ConfigError

PARAGRAPH = " The cat sat on the mat . It was warm and the cat slept . \n"
TEXTS = {
    "train": (" \n = Alpha = \n \n" + PARAGRAPH * 3 + " \n = = Beta = = \n \n"
              " Dogs ran far . \n") * 4,
    "validation": " \n = Gamma = \n \n" + " A bird sang . Then it flew away . \n" * 3,
    "test": " \n = Delta = \n \n Fish swim . \n",
}
# Words plus one <eos> a line: validation 1 + 4 + 1 + 3 * 10; test 1 + 4 + 1 + 4.
WORDS = {"validation": 36, "test": 10}


def test_wikitext_2_word_counts_are_the_published_ones():
  for split, words in (("train", 2_088_628), ("valid", 217_646), ("test", 245_569)):
    with gzip.open(SHARED_DATA / "wikitext-2" / f"{split}.txt.gz", "rt", encoding="utf-8") as f:
      assert wikitext.word_count(f.read()) == words, split


def test_lines_headings_paragraphs_and_sentences():
  assert wikitext.word_count(TEXTS["validation"]) == WORDS["validation"]
  assert wikitext.word_count(TEXTS["test"]) == WORDS["test"]
  assert wikitext.lines(" a \n b") == [" a \n", " b"]
  assert [wikitext.is_heading(line) for line in (" = A = \n", " = = B c = = \n", " a = b \n",
                                                 " \n")] == [True, True, False, False]
  assert wikitext.paragraphs(TEXTS["test"]) == [" Fish swim . "]
  sentences = wikitext.sentences(PARAGRAPH.removesuffix("\n"))
  assert sentences == [" The cat sat on the mat .", " It was warm and the cat slept . "]
  assert wikitext.sentences(" 3 @.@ 5 km . U.S. . ") == [" 3 @.@ 5 km .", " U.S. . "]


@pytest.fixture
def tiny_wikitext(tmp_path, monkeypatch):
  """data_dir holding a tiny WikiText-2 (gzipped, as the catalog lays it out), catalogued
  in place of the real one."""
  real = catalog.CATALOG["wikitext-2"]
  files = []
  for file in real.files:
    data = TEXTS[file.role].encode()
    (tmp_path / "wikitext-2").mkdir(exist_ok=True)
    (tmp_path / file.path).write_bytes(gzip.compress(data))
    files.append(dataclasses.replace(file, size=len(data),
                                     sha256=hashlib.sha256(data).hexdigest()))
  monkeypatch.setitem(catalog.CATALOG, "wikitext-2",
                      dataclasses.replace(real, files=tuple(files)))
  return str(tmp_path)


def _config(data_dir, **overrides):
  return tiny_config(**{"data.dataset": "wikitext-2", "data.data_dir": data_dir,
                        "data.path": "", **overrides})


def test_clm_trains_on_train_and_holds_out_validation_and_test(tiny_wikitext, tmp_path):
  cfg = _config(tiny_wikitext, **{"data.tokenizer": "bpe", "data.vocab_size": 300})
  data = lm_data.build(cfg, tokenizers.existing(cfg, str(tmp_path / "workdir")))
  eos = data.tokenizer.token_id(special_tokens.EOS)
  for tokens, split in ((data.validation_tokens, "validation"), (data.test_tokens, "test")):
    assert tokens[0] == eos  # So every token of the text is a scored target.
    assert data.tokenizer.decode(tokens[1:]) == TEXTS[split]
  assert data.word_counts == WORDS
  train_text = TEXTS["train"]
  for step in (0, 1):
    for row in data.train_batch_at(step)["inputs"]:
      assert data.tokenizer.decode(row) in train_text
  # The vocabulary is learned from training text only: "bird" never merges.
  assert "Ġbird" not in data.tokenizer._tokenizer.get_vocab()  # pylint: disable=protected-access


def test_char_tokenizer_covers_every_split(tiny_wikitext, tmp_path):
  data = lm_data.build(_config(tiny_wikitext), None)
  assert data.tokenizer.decode(data.test_tokens) == TEXTS["test"]  # No EOS to put first.
  assert data.tokenizer.decode(data.validation_tokens) == TEXTS["validation"]


def test_mlm_passages_are_paragraphs_cut_into_sentences(tiny_wikitext):
  cfg = tiny_config("mlm", **{"data.dataset": "wikitext-2", "data.data_dir": tiny_wikitext})
  sentences = mlm_data._dataset_sentences(cfg.data)  # pylint: disable=protected-access
  assert sentences["validation"] == [[" A bird sang .", " Then it flew away . "]] * 3
  assert sentences["test"] == [[" Fish swim . "]]
  assert sentences["train"] == ([[" The cat sat on the mat .", " It was warm and the cat "
                                  "slept . "]] * 3 + [[" Dogs ran far . "]]) * 4


def test_word_perplexity_is_total_nll_over_words():
  metrics = {"eval_loss": 2.0, "eval_tokens": 150, "test_loss": 1.0, "test_tokens": 10}
  result = clm_experiment.word_level_metrics(metrics, {"validation": 100, "test": 5})
  assert result == {"eval_words": 100, "eval_word_perplexity": pytest.approx(math.exp(3.0)),
                    "test_words": 5, "test_word_perplexity": pytest.approx(math.exp(2.0))}


@pytest.mark.slow  # A training run; word perplexity's formula is checked above.
def test_clm_eval_reports_validation_and_test_word_perplexity(tiny_wikitext, tmp_path):
  cfg = _config(tiny_wikitext, **{"train.num_steps": 2, "train.warmup_steps": 1,
                                  "train.eval_every_steps": 2, "decode.max_new_tokens": 0,
                                  "eval.stride": 16})
  clm_experiment.train(cfg, str(tmp_path / "workdir"))
  metrics = clm_experiment.evaluate(cfg, str(tmp_path / "workdir"))
  for prefix, split in (("eval", "validation"), ("test", "test")):
    assert metrics[f"{prefix}_tokens"] == len(TEXTS[split]) - 1  # Characters; none before.
    assert metrics[f"{prefix}_words"] == WORDS[split]
    total = metrics[f"{prefix}_loss"] * metrics[f"{prefix}_tokens"]
    assert metrics[f"{prefix}_word_perplexity"] == pytest.approx(math.exp(total / WORDS[split]))
  assert np.isfinite(metrics["test_perplexity"])


@pytest.mark.parametrize("config_module, dataset", [("clm", "uci-sentiment"),
                                                    ("mlm", "uci-sentiment"),
                                                    ("seq2seq", "wikitext-2"),
                                                    ("clm", "wikitext-3")])
def test_an_experiment_refuses_a_dataset_it_cannot_read(config_module, dataset):
  with pytest.raises(ConfigError) as error:
    tiny_config(config_module, **{"data.dataset": dataset})
  assert error.value.field == "data.dataset"
