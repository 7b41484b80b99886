"""Labelled text for classification: the fixed UCI sentiment split and tsv/jsonl files."""

import collections
import dataclasses
import hashlib

import pytest

from conftest import SHARED_DATA, tiny_config
from fuzzing import assert_one_line_user_error
from transformer_jax.data.corpora import labelled
from transformer_jax.errors import ConfigError, DataError


def _cfg(**data):
  """The tiny clm config with data.* replaced, as an experiment reading labels sees it
  (clm itself refuses labelled data, so the fields are set after validation)."""
  cfg = tiny_config()
  return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **data))


@pytest.fixture(scope="module")
def uci():
  return labelled.labelled_splits(_cfg(dataset="uci-sentiment", data_dir=str(SHARED_DATA)))


def _digest(examples) -> str:
  return hashlib.sha256("\n".join(f"{text}\t{label}" for text, label in examples)
                        .encode()).hexdigest()


def test_uci_split_is_the_documented_one(uci):
  """Golden values of the fixed split (catalog split_seed 331). Regenerate, only when the
  split is meant to change, by printing len() and _digest() of each split."""
  counts = {split: collections.Counter(label for _, label in examples)
            for split, examples in uci.items()}
  assert counts == {"train": {"0": 1191, "1": 1190}, "validation": {"0": 150, "1": 149},
                    "test": {"0": 150, "1": 149}}
  assert _digest(uci["test"])[:16] == "1bc2ead5b28da110"
  assert _digest(uci["validation"])[:16] == "9468d16e401b760c"
  assert _digest(uci["train"])[:16] == "4af2ebe7513d0955"


def test_uci_split_shares_no_sentence_between_splits(uci):
  keys = {split: [labelled.comparison_key(text) for text, _ in examples]
          for split, examples in uci.items()}
  every = [key for split_keys in keys.values() for key in split_keys]
  assert len(every) == len(set(every)) == 2979  # 3,000 lines, 21 repeats dropped.
  texts = [text for examples in uci.values() for text, _ in examples]
  assert texts.count("Works great!.") == 1  # amazon lines 19 and 525.
  assert "great phone." not in {text.casefold() for text in texts} - {"great phone."}
  # U+0085 stays inside its sentence (str.splitlines would cut it); quotes are text.
  assert "The script is\x85was there a script?" in texts
  assert all(text == text.strip() for text in texts)  # imdb's two trailing spaces go.


def test_uci_duplicates_keep_the_first_and_conflicts_go():
  rows = [("Great phone.", "1", "amazon"), ("great  PHONE.", "1", "amazon"),
          ("Meh.", "1", "imdb"), ("meh.", "0", "yelp"), ("Fine.", "1", "yelp")]
  splits = labelled.uci_split(rows, seed=0)
  kept = sorted(example for examples in splits.values() for example in examples)
  assert kept == [("Fine.", "1"), ("Great phone.", "1")]


def test_tsv_split_by_text_whatever_the_seed(tmp_path):
  lines = [f"sentence {i % 40}\t{'pos' if i % 2 else 'neg'}\textra column" for i in range(80)]
  (tmp_path / "a.tsv").write_text("\n".join(lines[:50]) + "\n\n")
  (tmp_path / "b.tsv").write_text("\n".join(lines[50:]) + "\n")
  path = str(tmp_path / "*.tsv")
  splits = labelled.labelled_splits(_cfg(path=path, format="tsv", validation_fraction=0.25,
                                         test_fraction=0.25))
  again = labelled.labelled_splits(dataclasses.replace(
      _cfg(path=path, format="tsv", validation_fraction=0.25, test_fraction=0.25),
      train=dataclasses.replace(tiny_config().train, seed=7)))
  assert splits == again
  assert sum(map(len, splits.values())) == 80
  split_of = collections.defaultdict(set)
  for split, examples in splits.items():
    assert examples, split
    for text, label in examples:
      split_of[text].add(split)
      assert label in ("pos", "neg")
  assert len(split_of) == 40 and all(len(splits_) == 1 for splits_ in split_of.values())


@pytest.mark.parametrize("content, message", [
    ("good\t1\nbad\n", "f.tsv:2: no label (expected text<TAB>label)"),
    ("good\t1\nbad\t \n", "f.tsv:2: no label (expected text<TAB>label)"),
    ("\t1\n", "f.tsv:1: no text before the label"),
])
def test_a_tsv_line_without_label_or_text_is_one_line(tmp_path, content, message):
  (tmp_path / "f.tsv").write_text(content)
  with pytest.raises(DataError) as error:
    labelled.labelled_splits(_cfg(path=str(tmp_path / "f.tsv"), format="tsv"))
  assert_one_line_user_error(error.value)
  assert str(error.value) == f"{tmp_path / message}"


def test_jsonl_labels_are_strings(tmp_path):
  records = ['{"body": "a", "y": 1}', '{"body": "b", "y": true}', '{"body": "c", "y": " x "}',
             '{"body": "d", "y": 2.5}']
  (tmp_path / "f.jsonl").write_text("\n".join(records * 5) + "\n")
  splits = labelled.labelled_splits(_cfg(path=str(tmp_path / "f.jsonl"), format="jsonl",
                                         text_field="body", label_field="y"))
  assert sorted(set(example for examples in splits.values() for example in examples)) == [
      ("a", "1"), ("b", "true"), ("c", "x"), ("d", "2.5")]


@pytest.mark.parametrize("record, message", [
    ('{"text": "a"}', "f.jsonl:2: no field 'label' (fields: text)"),
    ('{"text": "a", "label": null}', "f.jsonl:2: field 'label' is null, expected a label"),
    ('{"text": "a", "label": ""}', "f.jsonl:2: field 'label' is empty, expected a label"),
])
def test_a_jsonl_record_without_label_is_one_line(tmp_path, record, message):
  (tmp_path / "f.jsonl").write_text('{"text": "ok", "label": 0}\n' + record + "\n")
  with pytest.raises(DataError) as error:
    labelled.labelled_splits(_cfg(path=str(tmp_path / "f.jsonl"), format="jsonl"))
  assert_one_line_user_error(error.value)
  assert str(error.value).startswith(str(tmp_path / message))


@pytest.mark.parametrize("data, field", [
    ({"format": "text"}, "data.format"),
    ({"dataset": "wikitext-2"}, "data.dataset"),
    ({"format": "jsonl", "label_field": "text"}, "data.label_field"),
])
def test_config_rules_name_the_field(data, field):
  with pytest.raises(ConfigError) as error:
    labelled.validate(_cfg(**data))
  assert error.value.field == field
