"""Special tokens in the character tokenizer: after the characters, so old ids never move."""

import json
import os

import pytest

from transformer_jax.data.tokenizers import special_tokens
from transformer_jax.data.tokenizers.char_tokenizer import CharTokenizer
from transformer_jax.data.tokenizers.tokenizer import FILE_NAMES

FILE_NAME = FILE_NAMES["char"]
from transformer_jax.errors import DataError

SPECIAL = (special_tokens.PAD, special_tokens.EOS)


def test_special_tokens_come_after_the_characters():
  plain = CharTokenizer.from_text("hello")
  tokenizer = CharTokenizer.from_text("hello", SPECIAL)
  assert tokenizer.encode("hello").tolist() == plain.encode("hello").tolist() == [1, 0, 2, 2, 3]
  assert tokenizer.vocab_size == plain.vocab_size + 2 == 6
  assert [tokenizer.token_id(t) for t in SPECIAL] == [4, 5]
  assert tokenizer.token_id("h") == 0 + 1
  assert tokenizer.special_tokens == SPECIAL


def test_round_trip_with_special_ids():
  tokenizer = CharTokenizer.from_text("hello", SPECIAL)
  ids = tokenizer.encode("hello").tolist() + [tokenizer.token_id(special_tokens.EOS)]
  assert tokenizer.decode(ids) == "hello<eos>"
  assert tokenizer.decode(tokenizer.encode("olleh")) == "olleh"


def test_unknown_token_raises():
  with pytest.raises(DataError, match="^token '<mask>' is not in the vocabulary$"):
    CharTokenizer.from_text("hello", SPECIAL).token_id(special_tokens.MASK)


@pytest.mark.parametrize("special", [("<pad>", "<pad>"), ("h",)])
def test_special_tokens_must_be_new(special):
  with pytest.raises(ValueError, match="special tokens repeat"):
    CharTokenizer.from_text("hello", special)


def test_save_and_load_with_special_tokens(tmp_path):
  tokenizer = CharTokenizer.from_text("hello", SPECIAL)
  tokenizer.save(str(tmp_path / FILE_NAME))
  loaded = CharTokenizer.load(str(tmp_path / FILE_NAME))
  assert loaded.characters == tokenizer.characters
  assert loaded.special_tokens == SPECIAL
  assert loaded.token_id(special_tokens.EOS) == 5


def test_save_without_special_tokens_keeps_the_old_file(tmp_path):
  CharTokenizer.from_text("hello").save(str(tmp_path / FILE_NAME))
  contents = json.loads((tmp_path / FILE_NAME).read_text(encoding="utf-8"))
  assert contents == {"type": "char", "characters": ["e", "h", "l", "o"]}
  loaded = CharTokenizer.load(str(tmp_path / FILE_NAME))
  assert loaded.special_tokens == ()
  assert loaded.vocab_size == 4


def test_old_file_without_the_key_loads(tmp_path):
  (tmp_path / FILE_NAME).write_text(json.dumps({"type": "char", "characters": ["a", "b"]}))
  loaded = CharTokenizer.load(str(tmp_path / FILE_NAME))
  assert loaded.special_tokens == ()
  assert loaded.decode([1, 0]) == "ba"


def test_load_of_a_broken_file_names_it(tmp_path):
  (tmp_path / FILE_NAME).write_text(json.dumps(["a", "b"]))
  with pytest.raises(DataError, match=f"^cannot load vocabulary .*{FILE_NAME}"):
    CharTokenizer.load(str(tmp_path / FILE_NAME))


def test_a_vocabulary_file_loads_under_any_name(tmp_path):
  from transformer_jax.data.tokenizers import (tokenizer as tokenizer_lib)  # pylint: disable=import-outside-toplevel
  tokenizer = CharTokenizer.from_text("abc", special_tokens=("<pad>", "<eos>"))
  saved = tokenizer_lib.save(tokenizer, str(tmp_path))
  renamed = tmp_path / "my_vocabulary.json"
  os.rename(saved, renamed)
  loaded = tokenizer_lib.load(str(renamed))
  assert loaded.characters == ["a", "b", "c"] and loaded.token_id("<eos>") == 4
