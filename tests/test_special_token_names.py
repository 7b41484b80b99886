"""WordPiece tokenizers and special tokens spelled another way (<|endoftext|>, [CLS])."""

import pathlib

import pytest

from conftest import tiny_config
from transformer_jax.data.tokenizers import special_token_names, special_tokens
from transformer_jax.data.tokenizers import tokenizer as tokenizer_lib
from transformer_jax.data.tokenizers.bpe_tokenizer import BpeTokenizer
from transformer_jax.data.tokenizers.wordpiece_tokenizer import WordPieceTokenizer
from transformer_jax.errors import ConfigError

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
TEXTS = ["To be, or not to be, that is the question:"] * 4


def test_a_project_tokenizer_is_returned_unchanged():
  tokenizer = BpeTokenizer.train(TEXTS, 270, (special_tokens.PAD, special_tokens.EOS))
  assert special_token_names.with_names(tokenizer) is tokenizer


def test_gpt2_and_bert_spellings_answer_to_the_project_names():
  gpt2 = special_token_names.with_names(BpeTokenizer.train(TEXTS, 270, ("<|endoftext|>",)))
  end = gpt2.token_id("<|endoftext|>")
  assert [gpt2.token_id(t) for t in (special_tokens.EOS, special_tokens.BOS,
                                     special_tokens.PAD)] == [end, end, end]
  assert special_tokens.EOS in gpt2.special_tokens and "<|endoftext|>" not in gpt2.special_tokens
  bert = tokenizer_lib.load(str(FIXTURES / "hf_bert_tiny" / "tokenizer.json"))
  assert [bert.token_id(t) for t in (special_tokens.PAD, special_tokens.UNK, special_tokens.CLS,
                                     special_tokens.SEP, special_tokens.MASK)] == [0, 1, 2, 3, 4]
  assert tokenizer_lib.kind(bert) == "wordpiece"


def test_configured_names_win_and_must_exist():
  tokenizer = BpeTokenizer.train(TEXTS, 270, ("</s>", "<s>"))
  named = special_token_names.with_names(tokenizer, "eos=</s>, bos=<s>")
  assert (named.token_id(special_tokens.EOS), named.token_id(special_tokens.BOS)) == (0, 1)
  with pytest.raises(ConfigError, match=r"data.special_token_names: cls=\[CLS\]: '\[CLS\]' is "
                                        "not in the tokenizer's vocabulary"):
    special_token_names.with_names(tokenizer, "cls=[CLS]")
  with pytest.raises(ConfigError) as error:
    tiny_config(**{"data.special_token_names": "end=</s>"})
  assert error.value.field == "data.special_token_names"


def test_wordpiece_saves_and_loads_by_content(tmp_path):
  tokenizer = WordPieceTokenizer.train(TEXTS, 60, (special_tokens.PAD, special_tokens.CLS))
  assert tokenizer.special_tokens == (special_tokens.PAD, special_tokens.CLS,
                                      special_tokens.UNK)  # The unknown token is added.
  path = tokenizer_lib.save(tokenizer, str(tmp_path))
  assert path.endswith("tokenizer.json")
  loaded = tokenizer_lib.load(path)
  assert isinstance(loaded, WordPieceTokenizer)
  assert tokenizer_lib.fingerprint(loaded) == tokenizer_lib.fingerprint(tokenizer)
  assert loaded.decode(loaded.encode("to be or not")) == "to be or not"
