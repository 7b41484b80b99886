"""data.validation_path and data.test_path: a dataset's own split files, for every experiment.

When set, each replaces that split of data.path (hash or tail split) and data.path
trains, less the other held-out split when its file is not given; `--mode=eval` then
reports test_* metrics on the official test file.
"""

import pytest

from conftest import SHARED_DATA, tiny_config
from transformer_jax import tasks
from transformer_jax.data.corpora import labelled
from transformer_jax.data.tasks import lm_data, mlm_data, translation_data
from transformer_jax.errors import ConfigError
from transformer_jax.run.modes import ModeInputs
from transformer_jax.training.metrics_writer import read_metrics


def _lines(path, lines):
  path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
  return str(path)


def test_labelled_files_replace_their_splits(tmp_path):
  train = _lines(tmp_path / "train.tsv", [f"train text {i}\t{i % 2}" for i in range(40)])
  validation = _lines(tmp_path / "dev.tsv", ["a dev text\t1", "another\t0"])
  test = _lines(tmp_path / "test.tsv", ["the test text\t0"])
  cfg = tiny_config("classify", **{"data.dataset": "", "data.path": train, "data.format": "tsv",
                                   "data.validation_path": validation, "data.test_path": test})
  splits = labelled.labelled_splits(cfg)
  assert len(splits["train"]) == 40  # Nothing of data.path held out.
  assert splits["validation"] == [("a dev text", "1"), ("another", "0")]
  assert splits["test"] == [("the test text", "0")]
  # Only a test file: data.path is split into train and validation as before.
  only_test = tiny_config("classify", **{"data.dataset": "", "data.path": train,
                                         "data.format": "tsv", "data.test_path": test})
  parts = labelled.labelled_splits(only_test)
  assert parts["test"] == [("the test text", "0")]
  assert len(parts["train"]) + len(parts["validation"]) == 40 and parts["validation"]


def test_parallel_and_passage_files_replace_their_splits(tmp_path):
  pairs = _lines(tmp_path / "pairs.tsv", [f"I see {i}.\t我看 {i}。" for i in range(40)])
  test = _lines(tmp_path / "test.tsv", ["Hello.\t你好。"])
  cfg = tiny_config("seq2seq", **{"data.path": pairs, "data.test_path": test})
  parts = translation_data.read_splits(cfg.data, cfg.train.seed)
  assert [(p.text, p.target) for p in parts["test"]] == [("Hello.", "你好。")]
  assert len(parts["train"]) + len(parts["validation"]) == 40
  passages = _lines(tmp_path / "passages.txt", [f"line {i}\nnext {i}\n" for i in range(30)])
  held = _lines(tmp_path / "held.txt", ["held one\nheld two\n"])
  cfg = tiny_config("mlm", **{"data.path": passages, "data.validation_path": held})
  sentences = mlm_data._file_sentences(cfg.data, cfg.train.seed)  # pylint: disable=protected-access
  assert sentences["validation"] == [["held one\n", "held two\n"]]
  assert len(sentences["train"]) == 30


def test_a_language_models_validation_and_test_text(tmp_path):
  train = _lines(tmp_path / "train.txt", ["To be, or not to be, that is the question."] * 20)
  validation = _lines(tmp_path / "valid.txt", ["Whether 'tis nobler in the mind to suffer"] * 3)
  test = _lines(tmp_path / "test.txt", ["The slings and arrows of outrageous fortune"] * 3)
  cfg = tiny_config(**{"data.path": train, "data.validation_path": validation,
                       "data.test_path": test})
  data = lm_data.build(cfg, None)
  text = lambda tokens: data.tokenizer.decode(tokens)
  assert text(data.validation_tokens) == open(validation, encoding="utf-8").read()
  assert text(data.test_tokens) == open(test, encoding="utf-8").read()


@pytest.mark.slow  # A training run; the test file's reading is checked above.
def test_eval_reports_test_metrics_on_the_test_file(tmp_path):
  test = _lines(tmp_path / "test.tsv", ["A wonderful film.\t1", "Awful, awful food.\t0",
                                        "The battery died in a day.\t0"])
  workdir = str(tmp_path / "w")
  cfg = tiny_config("classify", **{
      "data.data_dir": str(SHARED_DATA), "train.num_steps": 6, "data.dataset": "",
      "data.path": f"{SHARED_DATA}/uci_sentiment/yelp_labelled.txt", "data.format": "tsv",
      "data.test_path": test})
  tasks.run(cfg, workdir, "train", ModeInputs())  # As launch.py's --mode=train and eval.
  tasks.run(cfg, workdir, "eval", ModeInputs())
  record = read_metrics(workdir)[-1]
  assert record["test_examples"] == 3 and 0 <= record["test_accuracy"] <= 1


@pytest.mark.parametrize("overrides, message", [
    ({"data.dataset": "wikitext-2", "data.validation_path": "v.txt"},
     "config.data.validation_path: a named dataset (wikitext-2) brings its own splits; set it "
     "to ''"),
    ({"data.format": "aligned", "data.target_path": "t.txt", "data.test_path": "x.txt"},
     "config.data.test_path: is for data.format text, jsonl or tsv, not 'aligned'"),
])
def test_split_files_a_format_cannot_take_are_one_line(overrides, message):
  with pytest.raises(ConfigError) as error:
    tiny_config(**overrides)
  assert str(error.value) == message
