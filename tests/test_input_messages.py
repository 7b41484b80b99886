"""Two messages issue 15 found wrong: a BPE vocabulary smaller than the byte alphabet (was a
traceback) and an input path that exists but is not a regular file (was "file not found")."""

import io
import os
import sys

import pytest

from configs import clm
from transformer_jax import configuration
from transformer_jax.data.tasks import lm_data
from transformer_jax.data.tokenizers import special_tokens
from transformer_jax.data.tokenizers import tokenizer as tokenizer_lib
from transformer_jax.data.tokenizers.bpe_tokenizer import BpeTokenizer
from transformer_jax.data.tokenizers.char_tokenizer import CharTokenizer
from transformer_jax.run.line_files import read_lines
from transformer_jax.errors import ConfigError, DataError


def _bpe_config(vocab_size: int):
  config = clm.get_config("tiny")
  config.data.tokenizer = "bpe"
  config.data.vocab_size = vocab_size
  return config


def test_a_bpe_vocabulary_below_the_bytes_is_a_config_error_before_any_work():
  with pytest.raises(ConfigError) as error:
    configuration.validate(_bpe_config(10))
  assert error.value.field == "data.vocab_size"
  assert str(error.value) == ("config.data.vocab_size: 10 is too small: a bpe vocabulary holds "
                              "the 256 bytes plus the experiment's special tokens")


def test_the_exact_minimum_counts_the_experiments_special_tokens(tmp_path):
  cfg = configuration.validate(_bpe_config(257))  # Above the bytes: the validator lets it by.
  with pytest.raises(ConfigError) as error:
    tokenizer_lib.make(cfg.data, None, ["some text"], lm_data.CAUSAL_LM_SPECIAL_TOKENS)
  assert str(error.value) == ("config.data.vocab_size: 257 is below the 256 bytes plus the 2 "
                              "special tokens this experiment needs: use at least 258")
  assert os.listdir(tmp_path) == []
  BpeTokenizer.check_vocab_size(258, (special_tokens.PAD, special_tokens.EOS))  # Enough.


@pytest.fixture(params=["dev_null", "directory", "fifo"])
def not_a_regular_file(request, tmp_path) -> str:
  if request.param == "dev_null":
    return os.devnull
  if request.param == "directory":
    return str(tmp_path)
  path = tmp_path / "fifo"
  os.mkfifo(path)  # Opening it would block until a writer comes: it must not be opened.
  return str(path)


def test_an_input_that_is_not_a_regular_file_says_so(not_a_regular_file):
  with pytest.raises(DataError) as error:
    read_lines(not_a_regular_file, "--input")
  assert str(error.value) == f"--input: {not_a_regular_file} is not a regular file"


@pytest.mark.parametrize("load, what", [(BpeTokenizer.load, "tokenizer file"),
                                        (CharTokenizer.load, "vocabulary file"),
                                        (tokenizer_lib.load, "tokenizer file")])
def test_a_tokenizer_path_that_is_not_a_regular_file_says_so(not_a_regular_file, load, what):
  with pytest.raises(DataError) as error:
    load(not_a_regular_file)
  assert str(error.value) == f"{what} {not_a_regular_file} is not a regular file"


def test_missing_files_and_stdin_read_as_before(tmp_path, monkeypatch):
  with pytest.raises(DataError, match=f"^--input: file not found: {tmp_path / 'no.txt'}$"):
    read_lines(str(tmp_path / "no.txt"), "--input")
  monkeypatch.setattr(sys, "stdin", io.StringIO("I am a student.\nHi.\n"))
  assert read_lines("-", "--input") == ["I am a student.", "Hi."]
