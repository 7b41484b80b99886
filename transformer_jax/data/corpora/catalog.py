"""Named datasets: their files, checksums, licences and sources, found in a data directory.

`data.dataset` names an entry of `CATALOG`; `resolve` finds its files under
`data.data_dir` (default: the per-user cache, `data_directory`):
  - a file present with the catalog's checksum is used (each file is hashed at most
    once per process);
  - a file present with another checksum is refused with one line, and left alone;
  - missing files are downloaded from the dataset's public archive over HTTPS into a
    temporary file, each one checked (size, then sha256) before it is renamed into
    place, so a partial or corrupt download is never used or kept;
  - when the download fails (offline, a firewall, a moved URL), one line says what
    to download from where and where to put it.

Checksums are of a file's content: for a `.gz` file, of the decompressed bytes
(gzip headers differ between compressors, the text does not). So `train.txt.gz`
may also be given uncompressed, as `train.txt`, and downloads are stored gzipped.
The datasets themselves are not part of the project; tests and CI point
`data.data_dir` at the repository's `../shared/data`, which holds them in this layout.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import zlib
from typing import Optional

from absl import logging

from transformer_jax.config_choices import DATASET_KINDS, LABELLED_DATASET, TEXT_DATASET
from transformer_jax.data.corpora import download
from transformer_jax.errors import DataError

TEXT = TEXT_DATASET  # Running text in predefined train/validation/test files (language models).
LABELLED = LABELLED_DATASET  # Sentences with labels; splits fixed here when the source has none.


@dataclasses.dataclass(frozen=True)
class DataFile:
  role: str  # What the dataset's reader calls it: "train", "validation", "amazon"...
  path: str  # Relative to the data directory, '/'-separated.
  member: str  # Its name inside the dataset's public archive.
  size: int  # Bytes of content (decompressed, for .gz).
  sha256: str  # Of the content (decompressed, for .gz).


@dataclasses.dataclass(frozen=True)
class Dataset:
  name: str
  title: str
  kind: str  # TEXT or LABELLED.
  files: tuple[DataFile, ...]
  url: str  # The public archive (zip) that holds every file, over HTTPS.
  # The archive's sha256 as published elsewhere; a mismatch (a repackaged mirror) is only
  # logged, because every file taken from it is checked on its own.
  archive_sha256: str
  homepage: str
  licence: str
  citation: str
  split_seed: int = 0  # LABELLED without official splits: the seed of the fixed split.
  word_perplexity: bool = False  # TEXT: report perplexity per word (+ one <eos> a line).

  def file(self, role: str) -> DataFile:
    return next(file for file in self.files if file.role == role)


_WIKITEXT_MEMBER = "wikitext-2/wiki.{}.tokens"
_UCI_MEMBER = "sentiment labelled sentences/{}"

CATALOG = {
    "wikitext-2": Dataset(
        name="wikitext-2",
        title="WikiText-2 (v1, tokenized)",
        kind=TEXT,
        files=(
            DataFile("train", "wikitext-2/train.txt.gz", _WIKITEXT_MEMBER.format("train"),
                     10_797_148,
                     "9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f"),
            DataFile("validation", "wikitext-2/valid.txt.gz", _WIKITEXT_MEMBER.format("valid"),
                     1_121_681,
                     "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8"),
            DataFile("test", "wikitext-2/test.txt.gz", _WIKITEXT_MEMBER.format("test"),
                     1_256_449,
                     "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0"),
        ),
        # The original https://s3.amazonaws.com/research.metamind.io/wikitext/ is gone;
        # the author's mirror serves the same archive.
        url="https://wikitext.smerity.com/wikitext-2-v1.zip",
        archive_sha256="92675f1d63015c1c8b51f1656a52d5bdbc33aafa60cc47a218a66e7ee817488c",
        homepage="https://arxiv.org/abs/1609.07843",
        licence="CC BY-SA 3.0 (Creative Commons Attribution-ShareAlike; text from Wikipedia)",
        citation="Stephen Merity, Caiming Xiong, James Bradbury, Richard Socher. Pointer "
                 "Sentinel Mixture Models. ICLR 2017. arXiv:1609.07843",
        word_perplexity=True),
    "uci-sentiment": Dataset(
        name="uci-sentiment",
        title="Sentiment Labelled Sentences (UCI Machine Learning Repository, dataset 331)",
        kind=LABELLED,
        files=(
            DataFile("amazon", "uci_sentiment/amazon_cells_labelled.txt",
                     _UCI_MEMBER.format("amazon_cells_labelled.txt"), 58_226,
                     "47003fc0a0d4840b00e96e715b6189bad09e7443a3da41c4cbe12ffc79f86ae3"),
            DataFile("imdb", "uci_sentiment/imdb_labelled.txt",
                     _UCI_MEMBER.format("imdb_labelled.txt"), 85_285,
                     "aef2e49e3da25714d61175e3a6e68eeef74a20a2f914318dc3be9947ea86512d"),
            DataFile("yelp", "uci_sentiment/yelp_labelled.txt",
                     _UCI_MEMBER.format("yelp_labelled.txt"), 61_320,
                     "c76468b7b5c6e56a0804d728345c5f84aa2142ddb214420f61cc9cfd4c00d2ea"),
        ),
        url="https://archive.ics.uci.edu/static/public/331/sentiment+labelled+sentences.zip",
        archive_sha256="afc26626d710899948693e1a61405dce197f57ffa719fa1130d346b4cc095343",
        homepage="https://archive.ics.uci.edu/dataset/331/sentiment+labelled+sentences",
        licence="CC BY 4.0",
        citation="Dimitrios Kotzias, Misha Denil, Nando de Freitas, Padhraic Smyth. From Group "
                 "to Individual Labels using Deep Features. KDD 2015",
        split_seed=331),
}
assert {name: dataset.kind for name, dataset in CATALOG.items()} == DATASET_KINDS, (
    "config_choices.DATASET_KINDS lists the catalog's names and kinds")

# (real path, size, mtime, inode) -> sha256 of the content: each file hashed once a process.
_HASHED: dict[tuple, str] = {}
_CHUNK = 1 << 20


def data_directory(data_dir: str = "") -> str:
  """data.data_dir as an absolute path; "" is the per-user cache
  ($XDG_CACHE_HOME/transformer_jax/datasets, else ~/.cache/transformer_jax/datasets)."""
  if data_dir:
    return os.path.abspath(os.path.expanduser(data_dir))
  cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(os.path.abspath(cache), "transformer_jax", "datasets")


def resolve(name: str, data_dir: str = "") -> dict[str, str]:
  """{role: path} of every file of the catalog's dataset `name`; see the module docstring."""
  return resolve_dataset(CATALOG[name], data_dir)


def resolve_dataset(dataset: Dataset, data_dir: str = "", *,
                    allow_loopback_http: bool = False) -> dict[str, str]:
  """{role: path} of every file of `dataset`, verified, downloading what is missing.

  allow_loopback_http: tests only; lets `dataset.url` be http://127.0.0.1 (a local server).
  Raises DataError (one line) for a wrong checksum or a failed download.
  """
  root = data_directory(data_dir)
  paths, missing = {}, []
  for file in dataset.files:
    path = present_path(root, file)
    if path is None:
      missing.append(file)
      continue
    _verify(dataset, file, path)
    paths[file.role] = path
  if missing:
    logging.info("%s: %d file(s) missing from %s, downloading %s", dataset.name,
                 len(missing), root, dataset.url)
    try:
      written = download.fetch_files(dataset, missing, root,
                                     allow_loopback_http=allow_loopback_http)
    except download.DownloadError as e:
      raise DataError(f"dataset {dataset.name}: {_listing(missing)} not in {root} and the "
                      f"download failed ({e}): {instructions(dataset, missing, root)}") from e
    for file, path in written.items():
      _remember(path, file.sha256)
      paths[file.role] = path
  return {file.role: paths[file.role] for file in dataset.files}


def present_path(root: str, file: DataFile) -> Optional[str]:
  """The file's path under `root` if it exists: as catalogued, or uncompressed (no .gz)."""
  path = os.path.join(root, *file.path.split("/"))
  candidates = [path] + ([path.removesuffix(".gz")] if path.endswith(".gz") else [])
  return next((candidate for candidate in candidates if os.path.exists(candidate)), None)


def instructions(dataset: Dataset, files, root: str) -> str:
  """Where to get `files` by hand and where to put them, as one sentence."""
  places = "; ".join(f"{file.member} as {os.path.join(root, *file.path.split('/'))}"
                     + (" (gzipped, or without .gz)" if file.path.endswith(".gz") else "")
                     for file in files)
  return (f"download {dataset.url} ({dataset.title}, {dataset.licence}) and put {places}; or "
          "set config.data.data_dir to a folder that holds them")


def content_sha256(path: str) -> str:
  """sha256 of a file's content (decompressed for .gz), computed at most once a process
  for a file left unchanged. DataError if it cannot be read (a truncated .gz)."""
  key = _key(path)
  if key in _HASHED:
    return _HASHED[key]
  digest = hashlib.sha256()
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rb") as f:
      for chunk in iter(lambda: f.read(_CHUNK), b""):
        digest.update(chunk)
  except (OSError, EOFError, zlib.error) as e:
    raise DataError(f"cannot read {path}: {' '.join(str(e).split())}; delete it (it is "
                    "downloaded again) or replace it") from e
  _HASHED[key] = digest.hexdigest()
  return _HASHED[key]


def _verify(dataset: Dataset, file: DataFile, path: str) -> None:
  actual = content_sha256(path)
  if actual != file.sha256:
    what = " (decompressed)" if path.endswith(".gz") else ""
    raise DataError(f"{path} is not {dataset.name}'s {file.member}: its content{what} has "
                    f"sha256 {actual[:16]}..., the catalog's is {file.sha256[:16]}...; not "
                    f"used: delete it to download it again, or replace it with {file.member} "
                    f"from {dataset.url}")


def _listing(files) -> str:
  return ", ".join(file.path for file in files)


def _key(path: str) -> tuple:
  stat = os.stat(path)
  return (os.path.realpath(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)


def _remember(path: str, sha256: str) -> None:
  """Records the content hash of a file this process wrote and checked."""
  _HASHED[_key(path)] = sha256
