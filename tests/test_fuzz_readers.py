"""Property: every reader of user files either reads them or raises the project's one-line
user error, whatever the bytes: random bytes, invalid UTF-8, truncated or corrupt gzip,
malformed JSONL and TSV, deep JSON, empty and very long lines.

Readers: `sources.read_documents` (text, jsonl, tsv, aligned; `.gz`), `text_files.read_text`,
`line_files.read_lines`, `CharTokenizer.load` and `BpeTokenizer.load`; and the
tokenizers' `encode` of any text, lone surrogates included (what invalid UTF-8 in a
command-line argument becomes).
"""

import gzip
import json
import os
import tempfile

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fuzzing import assert_one_line_user_error, fuzz_settings
from transformer_jax.data.corpora import sources, text_files
from transformer_jax.data.tokenizers.bpe_tokenizer import BpeTokenizer
from transformer_jax.data.tokenizers.char_tokenizer import CharTokenizer
from transformer_jax.run.line_files import read_lines
from transformer_jax.errors import UserError

# Characters that give the parsers something to chew on.
_TRICKY = st.sampled_from(["\t", "\n", "\r\n", "\r", "{", "}", "[", "]", '"', "\\", ":", ",",
                           "\x00", "\u2028", "\ufeff", "\ud800", "é", "猫", " ", "text", "1e999"])
_TEXT = st.lists(st.one_of(st.text(max_size=8), _TRICKY), max_size=30).map("".join)
_JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.text(max_size=6), children, max_size=3)),
    max_leaves=8)


@st.composite
def _jsonl_line(draw) -> str:
  kind = draw(st.sampled_from(["record", "value", "broken", "deep", "huge_number"]))
  if kind == "record":
    record = draw(st.dictionaries(st.sampled_from(["text", "body", "a\nb", ""]), _JSON_VALUE,
                                  max_size=3))
    return json.dumps(record, ensure_ascii=draw(st.booleans()))
  if kind == "value":
    return json.dumps(draw(_JSON_VALUE))
  if kind == "deep":
    depth = draw(st.sampled_from([10, 2000, 100_000]))
    return '{"text": ' + "[" * depth + "]" * depth + "}"
  if kind == "huge_number":
    return '{"text": "x", "n": ' + "9" * draw(st.sampled_from([10, 5000])) + "}"
  return draw(_TEXT)


@st.composite
def _text_content(draw, like: str = "free") -> str:
  """The text of a corpus file: free text, JSONL-ish or TSV-ish lines, or one long line;
  most often lines `like` the format being read."""
  kind = draw(st.sampled_from([like] * 4 + ["free", "jsonl", "tsv", "long_line", "empty"]))
  if kind == "empty":
    return draw(st.sampled_from(["", "\n", " \n\t\n"]))
  if kind == "long_line":
    return draw(st.sampled_from(["a", "猫", "\t", "é\t"])) * draw(
        st.sampled_from([10_000, 1_000_000])) + draw(st.sampled_from(["", "\n"]))
  if kind == "jsonl":
    lines = draw(st.lists(_jsonl_line(), min_size=1, max_size=5))
  elif kind == "tsv":
    lines = draw(st.lists(st.lists(_TEXT, min_size=1, max_size=4).map("\t".join), max_size=5))
  else:
    lines = draw(st.lists(_TEXT, max_size=5))
  return draw(st.sampled_from(["\n", "\r\n"])).join(lines)


@st.composite
def _file_bytes(draw, like: str = "free") -> tuple[bytes, bool]:
  """(bytes as stored, whether the file name should end in .gz)."""
  if draw(st.integers(0, 4)) == 0:
    raw = draw(st.binary(max_size=200))
  else:
    raw = draw(_text_content(like)).encode("utf-8", errors="surrogatepass")
  if draw(st.integers(0, 3)) == 0:  # Invalid UTF-8: a stray byte somewhere.
    position = draw(st.integers(0, len(raw)))
    raw = raw[:position] + bytes([draw(st.integers(0x80, 0xFF))]) + raw[position:]
  encoding = draw(st.sampled_from(["plain", "plain", "plain", "gzip", "truncated_gzip",
                                   "corrupt_gzip", "plain_named_gz"]))
  if encoding == "plain":
    return raw, False
  if encoding == "plain_named_gz":
    return raw, True
  packed = gzip.compress(raw, mtime=0)
  if encoding == "truncated_gzip":
    packed = packed[:draw(st.integers(0, len(packed) - 1))]
  elif encoding == "corrupt_gzip":
    position = draw(st.integers(10, len(packed) - 1))
    packed = packed[:position] + bytes([packed[position] ^ draw(st.integers(1, 255))]) + \
        packed[position + 1:]
  return packed, True


def _write(directory: str, name: str, content: tuple[bytes, bool]) -> str:
  data, gz = content
  path = os.path.join(directory, name + (".gz" if gz else ".txt"))
  with open(path, "wb") as f:
    f.write(data)
  return path


def _works_or_user_error(read, *args, **kwargs):
  try:
    return read(*args, **kwargs)
  except UserError as e:
    assert_one_line_user_error(e)
    return None


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> str:
  return str(tmp_path_factory.mktemp("fuzz"))


@fuzz_settings(300)
@given(data_format=st.sampled_from(["text", "jsonl", "tsv", "aligned"]), data=st.data(),
       invalid_utf8=st.sampled_from(["fail", "replace"]),
       text_field=st.sampled_from(["text", "body", ""]))
def test_read_documents(scratch, data_format, data, invalid_utf8, text_field):
  like = data_format if data_format in ("jsonl", "tsv") else "free"
  source, target = data.draw(_file_bytes(like)), data.draw(_file_bytes(like))
  with tempfile.TemporaryDirectory(dir=scratch) as directory:
    path = _write(directory, "source", source)
    target_path = _write(directory, "target", target) if data_format == "aligned" else ""
    corpus = _works_or_user_error(sources.read_documents, path, data_format,
                                  text_field=text_field,
                                  target_path=target_path, invalid_utf8=invalid_utf8)
    if corpus is not None:
      assert corpus.documents and all(isinstance(d.text, str) for d in corpus.documents)


@fuzz_settings(600)
@given(text=st.lists(_jsonl_line(), max_size=3).map("\n".join),
       text_field=st.sampled_from(["text", "body", ""]))
def test_parse_jsonl(text, text_field):
  """The JSONL parser alone (no file): many more lines in the same time."""
  documents = _works_or_user_error(sources.parse_jsonl, "a.jsonl", text, text_field)
  assert documents is None or all(isinstance(d.text, str) for d in documents)


@fuzz_settings(300)
@given(content=_file_bytes())
def test_read_text_and_read_lines(scratch, content):
  with tempfile.TemporaryDirectory(dir=scratch) as directory:
    path = _write(directory, "input", content)
    text = _works_or_user_error(text_files.read_text, path)
    assert text is None or text.strip()
    lines = _works_or_user_error(read_lines, path, "--input")
    assert lines is None or all("\n" not in line for line in lines)


@st.composite
def _vocabulary_file(draw) -> bytes:
  kind = draw(st.sampled_from(["bytes", "json", "vocabulary"]))
  if kind == "bytes":
    return draw(_file_bytes())[0]
  if kind == "json":
    return draw(_jsonl_line()).encode("utf-8", errors="surrogatepass")
  contents = {"type": "char",
              "characters": draw(st.one_of(st.lists(st.characters(), max_size=6),
                                           st.lists(_JSON_VALUE, max_size=3), _JSON_VALUE))}
  if draw(st.booleans()):
    contents["special_tokens"] = draw(st.one_of(st.lists(st.text(max_size=5), max_size=3),
                                                _JSON_VALUE))
  return json.dumps(contents).encode("utf-8", errors="surrogatepass")


@fuzz_settings(300)
@given(content=_vocabulary_file())
def test_char_vocabulary_files(scratch, content):
  with tempfile.TemporaryDirectory(dir=scratch) as directory:
    path = os.path.join(directory, "vocabulary.json")
    with open(path, "wb") as f:
      f.write(content)
    tokenizer = _works_or_user_error(CharTokenizer.load, path)
    if tokenizer is not None:  # A vocabulary that loads also works.
      assert tokenizer.decode(tokenizer.encode("".join(tokenizer.characters))) == "".join(
          tokenizer.characters)


_BPE = BpeTokenizer.train(["the cat sat on the mat " * 20], 300, ["<pad>", "<eos>"])
_BPE_JSON = _BPE.to_json()


@st.composite
def _tokenizer_file(draw) -> bytes:
  """A valid tokenizer.json, mutated: cut short, a key dropped or replaced; or junk."""
  kind = draw(st.sampled_from(["bytes", "truncated", "dropped", "replaced", "valid"]))
  if kind == "bytes":
    return draw(_file_bytes())[0]
  if kind == "truncated":
    return _BPE_JSON[:draw(st.integers(0, len(_BPE_JSON) - 1))].encode("utf-8")
  if kind == "valid":
    return _BPE_JSON.encode("utf-8")
  document = json.loads(_BPE_JSON)
  section = draw(st.sampled_from(["", "model", "pre_tokenizer", "decoder", "added_tokens"]))
  target = document if not section or not isinstance(document[section], dict) else \
      document[section]
  key = draw(st.sampled_from(sorted(target)))
  if kind == "dropped":
    del target[key]
  else:
    target[key] = draw(_JSON_VALUE)
  return json.dumps(document).encode("utf-8")


@fuzz_settings(300)
@given(content=_tokenizer_file())
# Found by a longer run: a long continuing_subword_prefix made the library panic.
@example(content=json.dumps({**json.loads(_BPE_JSON), "model": {
    **json.loads(_BPE_JSON)["model"], "continuing_subword_prefix": "x" * 20}}).encode())
def test_bpe_tokenizer_files(scratch, content):
  with tempfile.TemporaryDirectory(dir=scratch) as directory:
    path = os.path.join(directory, "tokenizer.json")
    with open(path, "wb") as f:
      f.write(content)
    tokenizer = _works_or_user_error(BpeTokenizer.load, path)
    if tokenizer is not None:
      assert tokenizer.vocab_size > 0


@fuzz_settings(300)
@given(text=st.one_of(_TEXT, st.text()))
def test_tokenizers_encode_any_text(text):
  ids = _works_or_user_error(_BPE.encode, text)
  if ids is not None:  # Byte level, no normalizer: exactly the text back.
    assert _BPE.decode(ids) == text
  char = CharTokenizer.from_text("abc\t\n猫")
  ids = _works_or_user_error(char.encode, text)
  assert (ids is not None) == (set(text) <= set("abc\t\n猫"))
  if ids is not None:
    assert char.decode(ids) == text
