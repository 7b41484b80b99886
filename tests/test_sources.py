"""Reading corpora into documents (every format, .gz, bad input) and splitting them."""

import gzip
import os
import pathlib

import pytest

from transformer_jax.data.corpora import sources, text_files
from transformer_jax.data.corpora.sources import Document
from transformer_jax.errors import DataError

REPO = pathlib.Path(__file__).resolve().parent.parent
TATOEBA = os.path.join(REPO, "experiments", "data", "tatoeba_eng_cmn.txt.gz")  # Shipped.


def write(path: pathlib.Path, content: str | bytes) -> str:
  """Writes `content` (gzip-compressed if the name ends in .gz) and returns the path."""
  data = content.encode("utf-8") if isinstance(content, str) else content
  if path.suffix == ".gz":
    data = gzip.compress(data)
  path.write_bytes(data)
  return str(path)


@pytest.fixture(scope="module")
def stdlib_corpus() -> sources.Corpus:
  return sources.read_documents("", "python_stdlib")


# text

def test_text_file_is_one_document(tmp_path):
  path = write(tmp_path / "a.txt", "Hello\nworld\n")
  expected = sources.Corpus((Document("Hello\nworld\n", path),), replaced_bytes=0)
  assert sources.read_documents(path, "text") == expected


def test_gzip_reads_the_same_as_plain(tmp_path):
  plain = write(tmp_path / "a.txt", "Hello\n")
  compressed = write(tmp_path / "a.txt.gz", "Hello\n")
  assert sources.read_documents(compressed, "text").documents == (Document("Hello\n", compressed),)
  assert sources.read_documents(plain, "text").documents[0].text == "Hello\n"


def test_glob_and_comma_list_are_sorted_and_deduplicated(tmp_path):
  b = write(tmp_path / "b.txt", "B")
  a = write(tmp_path / "a.txt", "A")
  c = write(tmp_path / "c.txt.gz", "C")
  write(tmp_path / "notes.md", "not matched")
  (tmp_path / "folder.txt").mkdir()  # A directory the glob matches is not a file.
  names = lambda path: [d.name for d in sources.read_documents(path, "text").documents]
  assert names(str(tmp_path / "*.txt*")) == [a, b, c]
  assert names(f"{b}, {a},{tmp_path / '?.txt'}") == [a, b]


def test_byte_order_mark_is_dropped(tmp_path):
  path = write(tmp_path / "a.txt", "\ufeffHi\n")
  assert sources.read_documents(path, "text").documents[0].text == "Hi\n"


def test_whitespace_only_documents_are_dropped(tmp_path):
  write(tmp_path / "a.txt", "A")
  write(tmp_path / "b.txt", " \n\t\n")
  documents = sources.read_documents(str(tmp_path / "*.txt"), "text").documents
  assert [d.text for d in documents] == ["A"]


# jsonl

def test_jsonl_reads_the_text_field_and_skips_blank_lines(tmp_path):
  path = write(tmp_path / "a.jsonl.gz",
               '{"text": "one", "id": 1}\n\n  \r\n{"text": "two\\nlines \u2028 here"}\r\n')
  documents = sources.read_documents(path, "jsonl").documents
  assert documents == (Document("one", f"{path}:1"),
                       Document("two\nlines \u2028 here", f"{path}:4"))


def test_jsonl_other_text_field(tmp_path):
  path = write(tmp_path / "a.jsonl", '{"body": "x"}\n')
  assert sources.read_documents(path, "jsonl", text_field="body").documents[0].text == "x"


@pytest.mark.parametrize("line, message", [
    ("{not json}", r"a.jsonl:2: not valid JSON \(Expecting property name .* at column 2\)$"),
    ('{"body": "x"}', r"a.jsonl:2: no field 'text' \(fields: body\)$"),
    ('{"text": 3}', r"a.jsonl:2: field 'text' is int, expected a string$"),
    ('["text"]', r"a.jsonl:2: expected a JSON object, got list$"),
])
def test_jsonl_bad_line_names_file_and_line(tmp_path, line, message):
  path = write(tmp_path / "a.jsonl", '{"text": "fine"}\n' + line + "\n")
  with pytest.raises(DataError, match=message):
    sources.read_documents(path, "jsonl")


# tsv

def test_tsv_pairs_ignore_extra_columns(tmp_path):
  path = write(tmp_path / "a.tsv", "Hi.\t嗨。\tCC-BY 2.0\r\n\nRun.\t跑。\n")
  documents = sources.read_documents(path, "tsv").documents
  assert documents == (Document("Hi.", f"{path}:1", "嗨。"),
                       Document("Run.", f"{path}:3", "跑。"))


def test_tsv_line_without_tab_names_file_and_line(tmp_path):
  path = write(tmp_path / "a.tsv", "Hi.\t嗨。\nno tab here\n")
  with pytest.raises(DataError, match=r"a.tsv:2: no tab between source and target$"):
    sources.read_documents(path, "tsv")


def test_tatoeba_file_reads_every_pair():
  # 29,156 newlines: 29,155 pairs, then one blank line at the end. The file starts
  # with a byte order mark, and every line has an attribution third column.
  documents = sources.read_documents(TATOEBA, "tsv").documents
  assert len(documents) == 29155
  assert documents[0] == Document("Hi.", f"{os.path.normpath(TATOEBA)}:1", "嗨。")
  assert not any("\t" in d.target or "Attribution" in d.target for d in documents)


# aligned

def test_aligned_pairs_lines(tmp_path):
  source = write(tmp_path / "src.txt", "one\ntwo\n\n")
  target = write(tmp_path / "tgt.txt.gz", "un\ndeux\n\n")
  documents = sources.read_documents(source, "aligned", target_path=target).documents
  assert documents == (Document("one", f"{source}:1", "un"), Document("two", f"{source}:2", "deux"))


def test_aligned_lengths_must_match(tmp_path):
  source = write(tmp_path / "src.txt", "one\ntwo\nthree\n")
  target = write(tmp_path / "tgt.txt", "un\ndeux\n")
  with pytest.raises(DataError, match=r"aligned files differ in length: .*src.txt has 3 lines, "
                                      r".*tgt.txt has 2$"):
    sources.read_documents(source, "aligned", target_path=target)


def test_aligned_needs_target_path_and_others_refuse_it(tmp_path):
  source = write(tmp_path / "src.txt", "one\n")
  with pytest.raises(DataError, match=r"format 'aligned' needs target_path.*src.txt$"):
    sources.read_documents(source, "aligned")
  with pytest.raises(DataError, match=r"target_path .*src.txt is only read by format 'aligned'"):
    sources.read_documents(source, "tsv", target_path=source)


# python_stdlib

def test_python_stdlib_finds_modules_but_no_tests(stdlib_corpus):
  names = [d.name for d in stdlib_corpus.documents]
  assert len(names) > 500
  assert names == sorted(names) and len(set(names)) == len(names)
  assert {"json", "json.decoder", "os", "email.mime.text"} <= set(names)
  parts = {part for name in names for part in name.split(".")}
  assert not parts & {"test", "tests", "idle_test", "site-packages"}
  decoder = dict((d.name, d.text) for d in stdlib_corpus.documents)["json.decoder"]
  assert "class JSONDecoder" in decoder


# invalid UTF-8

def test_invalid_utf8_fails_naming_file_and_offset(tmp_path):
  path = write(tmp_path / "a.txt.gz", b"ok \xff")
  with pytest.raises(DataError, match=r"a.txt.gz is not valid UTF-8 at byte offset 3 "):
    sources.read_documents(path, "text")
  path = write(tmp_path / "b.jsonl", b'{"text": "\xe2\x82"}\n')
  with pytest.raises(DataError, match=r"b.jsonl is not valid UTF-8 at byte offset 10$"):
    sources.read_documents(path, "jsonl")


def test_invalid_utf8_replace_counts_bytes(tmp_path):
  # \xff: 1 byte, one U+FFFD; \xe2\x82: a truncated 3-byte sequence, 2 bytes, one U+FFFD.
  a = write(tmp_path / "a.txt", b"a\xffb\xe2\x82c")
  b = write(tmp_path / "b.txt.gz", b"\xc3\xa9\xfe\xfe")
  corpus = sources.read_documents(f"{a},{b}", "text", invalid_utf8="replace")
  assert [d.text for d in corpus.documents] == ["a\ufffdb\ufffdc", "\u00e9\ufffd\ufffd"]
  assert corpus.replaced_bytes == 5


def test_unknown_invalid_utf8_policy_names_the_field(tmp_path):
  with pytest.raises(ValueError, match="data.invalid_utf8"):
    sources.read_documents(write(tmp_path / "a.txt", "A"), "text", invalid_utf8="ignore")


def test_read_text_keeps_its_behaviour(tmp_path):
  # read_text (the character-level path) keeps a byte order mark and stays strict.
  assert text_files.read_text(write(tmp_path / "a.txt", "\ufeffA")) == "\ufeffA"
  with pytest.raises(DataError, match=r"b.txt is not valid UTF-8 at byte offset 1$"):
    text_files.read_text(write(tmp_path / "b.txt", b"A\xff"))


# bad input

def test_missing_file_and_unmatched_glob_name_the_path(tmp_path):
  with pytest.raises(DataError, match=r"data file not found: .*missing.txt$"):
    sources.read_documents(str(tmp_path / "missing.txt"), "text")
  present = write(tmp_path / "a.tsv", "a\tb\n")
  with pytest.raises(DataError, match=r"data file not found: .*missing.tsv$"):
    sources.read_documents(f"{present},{tmp_path / 'missing.tsv'}", "tsv")
  with pytest.raises(DataError, match=r"no data files match .*nothing\*.txt$"):
    sources.read_documents(str(tmp_path / "nothing*.txt"), "text")
  with pytest.raises(DataError, match=r"no data path given for format 'jsonl'$"):
    sources.read_documents("", "jsonl")


def test_empty_corpus_names_the_path(tmp_path):
  path = write(tmp_path / "a.jsonl", '{"text": " "}\n\n')
  with pytest.raises(DataError, match=r"corpus is empty \(no non-whitespace text\): .*a.jsonl$"):
    sources.read_documents(path, "jsonl")
  path = write(tmp_path / "b.txt.gz", "")
  with pytest.raises(DataError, match=r"corpus is empty .*b.txt.gz$"):
    sources.read_documents(path, "text")


def test_unknown_format_names_it_and_the_valid_ones(tmp_path):
  with pytest.raises(DataError, match=r"unknown data format 'csv' for .*a.csv: expected one of "
                                      r"text, jsonl, tsv, aligned, python_stdlib$"):
    sources.read_documents(str(tmp_path / "a.csv"), "csv")


# split_documents

def documents(count: int) -> list[Document]:
  return [Document(f"text {i}", f"doc{i}") for i in range(count)]


def names_by_split(parts) -> dict[str, list[str]]:
  return {split: [d.name for d in part] for split, part in parts.items()}


def test_split_is_deterministic_and_complete():
  corpus = documents(200)
  parts = sources.split_documents(corpus, 0.1, 0.1, seed=0)
  assert list(parts) == ["train", "validation", "test"]
  assert parts == sources.split_documents(corpus, 0.1, 0.1, seed=0)
  assert sorted(d.name for part in parts.values() for d in part) == sorted(d.name for d in corpus)
  assert all(5 < len(parts[split]) < 40 for split in ("validation", "test"))
  # Each split keeps the input order.
  assert list(parts["train"]) == [d for d in corpus if d in parts["train"]]


def test_split_of_a_document_ignores_the_others():
  corpus = documents(200)
  before = sources.split_documents(corpus, 0.1, 0.1, seed=0)
  after = sources.split_documents(list(reversed(corpus)) + [Document("new", "doc-new")],
                                  0.1, 0.1, seed=0)
  for split in before:
    assert set(names_by_split(before)[split]) <= set(names_by_split(after)[split])


def test_split_depends_on_the_seed():
  corpus = documents(200)
  assert (names_by_split(sources.split_documents(corpus, 0.1, 0.1, seed=0))
          != names_by_split(sources.split_documents(corpus, 0.1, 0.1, seed=1)))


def test_split_position_is_a_sha256_of_seed_and_name():
  # int.from_bytes(sha256(b"0\x00doc0").digest()[:8], "big") / 2**64, by hand.
  import hashlib  # pylint: disable=import-outside-toplevel
  expected = int.from_bytes(hashlib.sha256(b"0\x00doc0").digest()[:8], "big") / 2**64
  assert sources.hash_position(0, "doc0") == expected


def test_three_documents_fill_every_split():
  for seed in range(20):
    parts = sources.split_documents(documents(3), 0.1, 0.1, seed)
    assert sorted(len(part) for part in parts.values()) == [1, 1, 1]


def test_zero_test_fraction_leaves_test_empty():
  parts = sources.split_documents(documents(2), 0.1, 0.0, seed=0)
  assert [len(parts[split]) for split in ("train", "validation", "test")] == [1, 1, 0]


def test_too_few_documents_to_split():
  with pytest.raises(DataError, match=r"cannot split 2 document\(s\) into train, validation, "
                                      r"test: need at least 3 \(doc0, doc1\)$"):
    sources.split_documents(documents(2), 0.1, 0.1, seed=0)
  with pytest.raises(ValueError, match="data.validation_fraction"):
    sources.split_documents(documents(3), 1.0, 0.0, seed=0)


def test_python_stdlib_split_is_by_module(stdlib_corpus):
  parts = sources.split_documents(stdlib_corpus.documents, 0.05, 0.05, seed=0)
  train = {d.name for d in parts["train"]}
  validation = {d.name for d in parts["validation"]}
  assert validation and not validation & train
