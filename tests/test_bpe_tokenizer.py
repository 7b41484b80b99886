"""Byte-level BPE: exact round trips, stable ids, special tokens, files and their errors."""

import gzip
import pathlib

import numpy as np
import pytest

from transformer_jax.data.tokenizers import special_tokens
from transformer_jax.data.tokenizers.bpe_tokenizer import BpeTokenizer
from transformer_jax.data.tokenizers.tokenizer import FILE_NAMES

FILE_NAME = FILE_NAMES["bpe"]
from transformer_jax.errors import DataError

REPO = pathlib.Path(__file__).resolve().parent.parent
SHAKESPEARE = REPO / "experiments" / "data" / "tinyshakespeare.txt.gz"
SPECIAL = (special_tokens.PAD, special_tokens.BOS, special_tokens.EOS, special_tokens.MASK)
VOCAB_SIZE = 512

PARAGRAPH = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
             "All:\nSpeak, speak.\n")


@pytest.fixture(scope="module")
def corpus() -> str:
  with gzip.open(SHAKESPEARE, "rt", encoding="utf-8") as f:
    return f.read(20_000)


@pytest.fixture(scope="module")
def tokenizer(corpus) -> BpeTokenizer:
  return BpeTokenizer.train(corpus.splitlines(keepends=True), VOCAB_SIZE, SPECIAL)


@pytest.mark.parametrize("text", [
    PARAGRAPH,
    "我是学生。",
    "Mixed: 我是学生, ça va? 😀 ok — done.",
    "def f(x):\n\tif x:  \n\t\treturn x   \n\n  # trailing\t \n",
    " leading space, then double  spaces and\r\nwindows lines",
    "",
])
def test_round_trip_is_exact(tokenizer, text):
  ids = tokenizer.encode(text)
  assert ids.dtype == np.int32 and ids.ndim == 1
  assert tokenizer.decode(ids) == text


def test_encode_batch_matches_encode(tokenizer):
  texts = [PARAGRAPH, "我是学生。", ""]
  batch = tokenizer.encode_batch(texts)
  assert [ids.tolist() for ids in batch] == [tokenizer.encode(t).tolist() for t in texts]
  assert all(ids.dtype == np.int32 for ids in batch)


def test_save_then_load_gives_identical_ids(tokenizer, tmp_path):
  path = tokenizer.save(str(tmp_path / FILE_NAME))
  loaded = BpeTokenizer.load(path)
  assert loaded.encode(PARAGRAPH).tolist() == tokenizer.encode(PARAGRAPH).tolist()
  assert loaded.vocab_size == tokenizer.vocab_size
  assert loaded.special_tokens == SPECIAL


def test_training_twice_gives_identical_ids(tokenizer, corpus):
  again = BpeTokenizer.train(corpus.splitlines(keepends=True), VOCAB_SIZE, SPECIAL)
  assert again.encode(PARAGRAPH).tolist() == tokenizer.encode(PARAGRAPH).tolist()
  assert [again.decode([i]) for i in range(VOCAB_SIZE)] == [
      tokenizer.decode([i]) for i in range(VOCAB_SIZE)]


def test_special_tokens_take_the_first_ids_in_order(tokenizer):
  assert tokenizer.special_tokens == SPECIAL
  assert [tokenizer.token_id(t) for t in SPECIAL] == list(range(len(SPECIAL)))


def test_special_tokens_in_text_encode_as_one_token(tokenizer):
  eos = tokenizer.token_id(special_tokens.EOS)
  ids = tokenizer.encode(f"The end.{special_tokens.EOS}Next")
  assert ids.tolist().count(eos) == 1
  assert tokenizer.decode(ids) == "The end.<eos>Next"
  assert tokenizer.decode(ids, skip_special_tokens=True) == "The end.Next"


def test_unknown_token_raises(tokenizer):
  with pytest.raises(DataError, match="^token '<cls>' is not in the vocabulary$"):
    tokenizer.token_id(special_tokens.CLS)


def test_vocab_size_is_the_requested_size(tokenizer):
  assert tokenizer.vocab_size == VOCAB_SIZE


def test_bpe_compresses(tokenizer):
  assert len(tokenizer.encode(PARAGRAPH)) < 0.7 * len(PARAGRAPH.encode("utf-8"))


def test_every_byte_is_in_the_alphabet():
  tiny = BpeTokenizer.train(["ab"], 300, [special_tokens.PAD])
  text = "".join(map(chr, range(1, 128))) + "我😀\x00"
  assert tiny.decode(tiny.encode(text)) == text
  assert tiny.vocab_size == 1 + 256 + 1  # <pad>, the bytes, then the single merge "ab".


def test_vocab_size_below_the_alphabet_is_rejected():
  with pytest.raises(ValueError, match="vocab_size 200 is below the 256 bytes plus 1"):
    BpeTokenizer.train(["ab"], 200, [special_tokens.PAD])


def test_decode_rejects_ids_out_of_range(tokenizer):
  with pytest.raises(ValueError, match=r"ids must lie in \[0, 512\)"):
    tokenizer.decode([VOCAB_SIZE])


def test_load_missing_file_names_it(tmp_path):
  path = tmp_path / "missing" / FILE_NAME
  with pytest.raises(DataError, match=f"^tokenizer file not found: {path}$"):
    BpeTokenizer.load(str(path))


@pytest.mark.parametrize("contents", [b"\xff\x00 garbage", b"{\"a\": 1}", b""])
def test_load_garbage_names_the_file(tmp_path, contents):
  path = tmp_path / FILE_NAME
  path.write_bytes(contents)
  with pytest.raises(DataError, match=f"^cannot load tokenizer {path}: [^\n]+$"):
    BpeTokenizer.load(str(path))


def test_load_rejects_a_tokenizer_that_is_not_bpe(tmp_path):
  import tokenizers
  path = str(tmp_path / FILE_NAME)
  tokenizers.Tokenizer(tokenizers.models.WordLevel({"a": 0}, unk_token="a")).save(path)
  with pytest.raises(DataError, match="its model is WordLevel, not BPE$"):
    BpeTokenizer.load(path)


def test_save_to_a_missing_directory_names_the_file(tokenizer, tmp_path):
  path = tmp_path / "missing" / FILE_NAME
  with pytest.raises(DataError, match=f"^cannot save tokenizer {path}: "):
    tokenizer.save(str(path))


def test_special_token_list_is_validated():
  assert special_tokens.validate([special_tokens.EOS, special_tokens.PAD]) == ("<eos>", "<pad>")
  with pytest.raises(ValueError, match="^data.special_tokens: unknown token '<eot>'"):
    special_tokens.validate(["<eot>"])
  with pytest.raises(ValueError, match="^data.special_tokens: tokens repeated"):
    special_tokens.validate(["<pad>", "<pad>"])
  with pytest.raises(ValueError, match="^data.special_tokens must be a list"):
    special_tokens.validate("<pad>")
