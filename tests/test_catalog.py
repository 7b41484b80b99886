"""The dataset catalog: checksums, the data directory, and downloads from a loopback server.

Downloads are tested against `http.server` on 127.0.0.1 only (the test hook
`allow_loopback_http`); real use is HTTPS. Small made-up datasets stand in for the
catalog's entries, whose checksums are checked against ../shared/data separately.
"""

import contextlib
import dataclasses
import gzip
import hashlib
import http.server
import io
import os
import socket
import threading
import zipfile

import pytest

from conftest import SHARED_DATA
from fuzzing import assert_one_line_user_error
from transformer_jax.data.corpora import catalog
from transformer_jax.errors import DataError

TRAIN = "one two three\n" * 3
NOTES = "a readme\n"


def _dataset(url: str = "https://example.invalid/data.zip") -> catalog.Dataset:
  """Two files: one stored gzipped (its sha256 is of the text), one plain."""
  files = tuple(catalog.DataFile(role, path, member, len(text.encode()),
                                 hashlib.sha256(text.encode()).hexdigest())
                for role, path, member, text in (
                    ("train", "toy/train.txt.gz", "toy-v1/train.tokens", TRAIN),
                    ("notes", "toy/notes.txt", "toy-v1/notes.txt", NOTES)))
  return catalog.Dataset(name="toy", title="Toy", kind=catalog.TEXT, files=files, url=url,
                         archive_sha256="0" * 64, homepage="", licence="CC0", citation="")


def _zip(members: dict[str, str]) -> bytes:
  buffer = io.BytesIO()
  with zipfile.ZipFile(buffer, "w") as zf:
    for name, text in members.items():
      zf.writestr(name, text)
  return buffer.getvalue()


GOOD_ZIP = _zip({"toy-v1/train.tokens": TRAIN, "toy-v1/notes.txt": NOTES,
                 "__MACOSX/toy-v1/._notes.txt": "resource fork"})


@contextlib.contextmanager
def _server(body: bytes, claimed_length=None):
  """An HTTP server on 127.0.0.1 answering every GET with `body` (and a Content-Length of
  `claimed_length`, when given, to cut a download short). Yields (url, requests served)."""
  served = []

  class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # pylint: disable=invalid-name
      served.append(self.path)
      self.send_response(200)
      self.send_header("Content-Length", str(claimed_length or len(body)))
      self.end_headers()
      self.wfile.write(body)

    def log_message(self, *args):
      pass

  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
  thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
  thread.start()
  try:
    yield f"http://127.0.0.1:{server.server_address[1]}/toy.zip", served
  finally:
    server.shutdown()
    server.server_close()


def _files_under(root) -> list[str]:
  return sorted(os.path.relpath(os.path.join(folder, name), root)
                for folder, _, names in os.walk(root) for name in names)


@pytest.mark.parametrize("name", sorted(catalog.CATALOG))
def test_shared_data_matches_the_catalog(name):
  paths = catalog.resolve(name, str(SHARED_DATA))
  dataset = catalog.CATALOG[name]
  assert sorted(paths) == sorted(file.role for file in dataset.files)
  for file in dataset.files:
    assert paths[file.role] == str(SHARED_DATA / file.path)  # The layout, as it is.
    assert dataset.url.startswith("https://")


def test_data_directory_defaults_to_the_user_cache(monkeypatch, tmp_path):
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  assert catalog.data_directory("") == str(tmp_path / "transformer_jax" / "datasets")
  monkeypatch.delenv("XDG_CACHE_HOME")
  monkeypatch.setenv("HOME", str(tmp_path))
  assert catalog.data_directory("") == str(tmp_path / ".cache" / "transformer_jax" / "datasets")
  assert catalog.data_directory("~/d") == str(tmp_path / "d")


def _write(root, relative: str, text: str, compress: bool = False) -> None:
  path = root / relative
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())


def test_present_files_are_used_and_hashed_once_per_process(tmp_path, monkeypatch):
  _write(tmp_path, "toy/train.txt", TRAIN)  # Uncompressed stands in for train.txt.gz.
  _write(tmp_path, "toy/notes.txt", NOTES)
  dataset, hashed = _dataset(), []
  real_sha256 = hashlib.sha256
  monkeypatch.setattr(hashlib, "sha256", lambda *data: hashed.append(1) or real_sha256(*data))
  for _ in range(2):
    paths = catalog.resolve_dataset(dataset, str(tmp_path))
    assert paths == {"train": str(tmp_path / "toy" / "train.txt"),
                     "notes": str(tmp_path / "toy" / "notes.txt")}
  assert len(hashed) == 2  # Two files, each once.


def test_a_file_with_another_checksum_is_refused_and_left_alone(tmp_path):
  _write(tmp_path, "toy/train.txt.gz", TRAIN + "tampered\n", compress=True)
  _write(tmp_path, "toy/notes.txt", NOTES)
  before = (tmp_path / "toy" / "train.txt.gz").read_bytes()
  with pytest.raises(DataError) as error:
    catalog.resolve_dataset(_dataset(), str(tmp_path))
  assert_one_line_user_error(error.value)
  message = str(error.value)
  assert str(tmp_path / "toy" / "train.txt.gz") in message and "not used" in message
  assert "toy-v1/train.tokens" in message and "(decompressed)" in message
  assert (tmp_path / "toy" / "train.txt.gz").read_bytes() == before


def test_missing_files_download_verified_from_a_loopback_server(tmp_path):
  with _server(GOOD_ZIP) as (url, served):
    dataset = _dataset(url)
    paths = catalog.resolve_dataset(dataset, str(tmp_path), allow_loopback_http=True)
    assert served == ["/toy.zip"]
    assert _files_under(tmp_path) == ["toy/notes.txt", "toy/train.txt.gz"]  # Nothing else.
    assert gzip.decompress((tmp_path / "toy" / "train.txt.gz").read_bytes()).decode() == TRAIN
    assert (tmp_path / "toy" / "notes.txt").read_text() == NOTES
    assert paths["train"] == str(tmp_path / "toy" / "train.txt.gz")
    catalog.resolve_dataset(dataset, str(tmp_path), allow_loopback_http=True)
    assert served == ["/toy.zip"]  # Present now: no second download.


def test_only_the_missing_files_are_taken_from_the_download(tmp_path):
  _write(tmp_path, "toy/notes.txt", NOTES)
  with _server(GOOD_ZIP) as (url, _):
    catalog.resolve_dataset(_dataset(url), str(tmp_path), allow_loopback_http=True)
  assert _files_under(tmp_path) == ["toy/notes.txt", "toy/train.txt.gz"]


@pytest.mark.parametrize("body, claimed_length, reason", [
    (_zip({"toy-v1/train.tokens": TRAIN.upper(), "toy-v1/notes.txt": NOTES}), None,
     "toy-v1/train.tokens in the archive has"),  # A corrupt member: right size, wrong bytes.
    (_zip({"toy-v1/notes.txt": NOTES}), None, "the archive holds no toy-v1/train.tokens"),
    (GOOD_ZIP[:len(GOOD_ZIP) // 2], len(GOOD_ZIP), "bytes"),  # The connection drops.
    (b"<html>moved</html>", None, "not a valid zip archive"),
])
def test_a_bad_download_is_never_kept(tmp_path, body, claimed_length, reason):
  with _server(body, claimed_length) as (url, served):
    with pytest.raises(DataError) as error:
      catalog.resolve_dataset(_dataset(url), str(tmp_path), allow_loopback_http=True)
  assert served
  assert_one_line_user_error(error.value)
  assert reason in str(error.value)
  assert _files_under(tmp_path) == []  # No file, no partial download, no temporary file.


def test_offline_names_what_to_download_and_where_to_put_it(tmp_path):
  with socket.socket() as unused:  # A port nobody listens on: the download fails at once.
    unused.bind(("127.0.0.1", 0))
    port = unused.getsockname()[1]
  dataset = _dataset(f"http://127.0.0.1:{port}/toy.zip")
  with pytest.raises(DataError) as error:
    catalog.resolve_dataset(dataset, str(tmp_path / "cache"), allow_loopback_http=True)
  assert_one_line_user_error(error.value)
  message = str(error.value)
  assert message.startswith("dataset toy: toy/train.txt.gz, toy/notes.txt not in ")
  assert f"download {dataset.url} (Toy, CC0) and put toy-v1/train.tokens as " in message
  assert str(tmp_path / "cache" / "toy" / "train.txt.gz") + " (gzipped, or without .gz)" in message
  assert "config.data.data_dir" in message
  assert _files_under(tmp_path) == []


def test_plain_http_is_refused_without_the_test_hook(tmp_path):
  with _server(GOOD_ZIP) as (url, served):
    with pytest.raises(DataError, match="HTTPS only"):
      catalog.resolve_dataset(_dataset(url), str(tmp_path))
  assert served == []


def test_each_dataset_lists_what_a_user_needs():
  for name, dataset in catalog.CATALOG.items():
    assert dataset.name == name and dataset.licence and dataset.citation and dataset.homepage
    assert all(len(file.sha256) == 64 and file.size > 0 for file in dataset.files)
  assert dataclasses.asdict(catalog.CATALOG["uci-sentiment"])["split_seed"] == 331
