"""Text files, the character tokenizer and language-model batches."""

import gzip
import hashlib

import numpy as np
import pytest

from configs import clm
from transformer_jax.data.batches import lm_batches
from transformer_jax.data.corpora import text_files
from transformer_jax.data.tokenizers.char_tokenizer import CharTokenizer
from transformer_jax.errors import DataError

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n"


def test_read_text_plain_and_gzip_are_the_same(tmp_path):
  (tmp_path / "a.txt").write_text(TEXT, encoding="utf-8")
  with gzip.open(tmp_path / "a.txt.gz", "wt", encoding="utf-8") as f:
    f.write(TEXT)
  assert text_files.read_text(str(tmp_path / "a.txt")) == TEXT
  assert text_files.read_text(str(tmp_path / "a.txt.gz")) == TEXT


def test_read_text_errors_name_the_file(tmp_path):
  with pytest.raises(DataError, match="data file not found: .*missing.txt"):
    text_files.read_text(str(tmp_path / "missing.txt"))
  (tmp_path / "broken.txt.gz").write_bytes(b"not gzip at all")
  with pytest.raises(DataError, match="cannot read data file .*broken.txt.gz"):
    text_files.read_text(str(tmp_path / "broken.txt.gz"))
  (tmp_path / "bad.txt").write_bytes(b"ab\xffcd")
  with pytest.raises(DataError, match="bad.txt is not valid UTF-8 at byte offset 2$"):
    text_files.read_text(str(tmp_path / "bad.txt"))


def test_tokenizer_ids_are_sorted_ranks():
  tokenizer = CharTokenizer.from_text("hello")
  assert tokenizer.characters == ["e", "h", "l", "o"]
  assert tokenizer.vocab_size == 4
  ids = tokenizer.encode("hello")
  assert ids.dtype == np.int32
  assert ids.tolist() == [1, 0, 2, 2, 3]
  assert tokenizer.decode(ids) == "hello"


def test_tokenizer_round_trip_with_unicode(tmp_path):
  text = "Ça va, ROMEO? — ja 😀\n"
  tokenizer = CharTokenizer.from_text(text)
  assert tokenizer.decode(tokenizer.encode(text)) == text
  tokenizer.save(str(tmp_path / "vocabulary.json"))
  loaded = CharTokenizer.load(str(tmp_path / "vocabulary.json"))
  assert loaded.characters == tokenizer.characters
  assert loaded.encode(text).tolist() == tokenizer.encode(text).tolist()


@pytest.mark.parametrize("text, bad", [
    ("hef", "'f'"),  # Below 'o', the largest code point of the vocabulary: in the table.
    ("hex", "'x'"),  # Beyond the lookup table.
    ("h\u00e9llo", "'é'"),  # Beyond the table, and not ASCII.
])
def test_unknown_character_is_named(text, bad):
  tokenizer = CharTokenizer.from_text("hello")
  with pytest.raises(DataError, match=f"^character {bad} is not in the vocabulary$"):
    tokenizer.encode(text)


def test_load_without_vocabulary_names_the_file(tmp_path):
  with pytest.raises(DataError, match="cannot load vocabulary .*vocabulary.json"):
    CharTokenizer.load(str(tmp_path / "vocabulary.json"))


def test_split_stream_is_first_90_then_last_10_percent():
  tokens = np.arange(100, dtype=np.int32)
  split = lm_batches.split_stream(tokens, 0.1, length=8)
  assert split.train.tolist() == list(range(90))
  assert split.validation.tolist() == list(range(90, 100))
  again = lm_batches.split_stream(tokens, 0.1, length=8)
  assert again.train.tolist() == split.train.tolist()


def test_split_too_short_for_one_window():
  # The validation split has 10 tokens; a window needs max_length + 1 = 11.
  with pytest.raises(DataError, match="the validation split has 10 tokens, fewer than "
                     r"model.max_length \+ 1 = 11"):
    lm_batches.split_stream(np.arange(100), 0.1, length=10)


def test_batch_rows_are_windows_and_targets_are_shifted_inputs():
  tokens = np.arange(1000, dtype=np.int32)  # Token i is i: a row is start + arange.
  batch = lm_batches.batch_at(tokens, seed=0, step=3, batch_size=4, length=16)
  inputs, targets = batch["inputs"], batch["targets"]
  assert inputs.shape == targets.shape == (4, 16)
  assert inputs.dtype == targets.dtype == np.int32
  np.testing.assert_array_equal(inputs, inputs[:, :1] + np.arange(16))
  np.testing.assert_array_equal(targets, inputs + 1)
  np.testing.assert_array_equal(inputs[:, 0], lm_batches.window_starts(0, 3, 4, 1000, 16))


def test_windows_stay_inside_the_stream():
  # With exactly length + 1 tokens there is one window, starting at 0.
  tokens = np.arange(17, dtype=np.int32)
  batch = lm_batches.batch_at(tokens, seed=5, step=0, batch_size=3, length=16)
  np.testing.assert_array_equal(batch["inputs"], np.tile(np.arange(16), (3, 1)))
  np.testing.assert_array_equal(batch["targets"], np.tile(np.arange(1, 17), (3, 1)))


def test_batch_is_a_pure_function_of_seed_and_step():
  tokens = np.arange(10_000, dtype=np.int32)
  batch = lambda seed, step: lm_batches.batch_at(tokens, seed, step, 8, 32)["inputs"]
  np.testing.assert_array_equal(batch(1337, 7), batch(1337, 7))
  assert not np.array_equal(batch(1337, 7), batch(1337, 8))
  assert not np.array_equal(batch(1337, 7), batch(1338, 7))


def test_process_rows_concatenate_to_the_global_batch():
  tokens = np.arange(10_000, dtype=np.int32)
  whole = lm_batches.batch_at(tokens, 1337, 4, 8, 32)
  parts = [lm_batches.batch_at(tokens, 1337, 4, 8, 32, process_index=p, process_count=2)
           for p in (0, 1)]
  for key in ("inputs", "targets"):
    assert parts[0][key].shape == (4, 32)
    np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), whole[key])


def test_shipped_corpus_is_tiny_shakespeare():
  # Golden values from experiments/data/README.md.
  text = text_files.read_text(clm.get_config("tiny").data.path)
  assert len(text) == 1_115_394
  assert hashlib.md5(text.encode("utf-8")).hexdigest() == "6fb458f1232090904fb40fe944165e91"
  assert CharTokenizer.from_text(text).vocab_size == 65
