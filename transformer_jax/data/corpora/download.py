"""Fetching a catalogued dataset's files from its public archive, never keeping a bad byte.

`fetch_files` downloads the archive over HTTPS into a temporary file beside the data,
takes the wanted members out of it, checks each one's size and sha256 against the
catalog, and only then writes it (gzipped when its catalog path ends in .gz) to a
temporary file renamed into place. The archive itself is deleted whatever happens.
A failure at any point raises `DownloadError` with a one-line reason; `catalog.resolve`
turns it into the user's message. Only the standard library (urllib, zipfile) is used.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib

from absl import logging

_CHUNK = 1 << 20
_LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
_USER_AGENT = "transformer_jax-dataset-download (Python urllib)"
TIMEOUT_SECONDS = 60.0  # For connecting and for each read.


class DownloadError(Exception):
  """A download that failed or did not hold the catalogued files; nothing of it was kept."""


def fetch_files(dataset, files, root: str, *, allow_loopback_http: bool = False,
                timeout: float = TIMEOUT_SECONDS) -> dict:
  """{file: path} for `files` (catalog.DataFile of `dataset`) written under `root`.

  allow_loopback_http: tests only, lets the URL be plain http on the loopback interface.
  """
  _check_url(dataset.url, allow_loopback_http)
  try:
    os.makedirs(root, exist_ok=True)
  except OSError as e:
    raise DownloadError(f"cannot create {root}: {_one_line(e)}") from e
  archive, archive_sha256 = _download(dataset.url, root, timeout, allow_loopback_http)
  try:
    if archive_sha256 != dataset.archive_sha256:
      logging.warning("%s: the archive's sha256 %s is not the recorded %s (a repackaged "
                      "mirror?); its files are checked one by one", dataset.url,
                      archive_sha256, dataset.archive_sha256)
    contents = _extract(archive, files)
  finally:
    _remove(archive)
  return {file: _install(root, file.path, data) for file, data in contents.items()}


def _check_url(url: str, allow_loopback_http: bool) -> None:
  parts = urllib.parse.urlsplit(url)
  if parts.scheme == "https" or (allow_loopback_http and parts.scheme == "http"
                                 and parts.hostname in _LOOPBACK_HOSTS):
    return
  raise DownloadError(f"refusing {url}: datasets are downloaded over HTTPS only")


def _download(url: str, root: str, timeout: float,
              allow_loopback_http: bool) -> tuple[str, str]:
  """(temporary file in root holding the whole response body, its sha256)."""
  try:
    descriptor, path = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=root)
  except OSError as e:
    raise DownloadError(f"cannot write in {root}: {_one_line(e)}") from e
  digest, size = hashlib.sha256(), 0
  try:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with os.fdopen(descriptor, "wb") as f, urllib.request.urlopen(request,
                                                                   timeout=timeout) as response:
      _check_url(response.geturl(), allow_loopback_http)  # No redirect away from HTTPS.
      expected = response.headers.get("Content-Length")
      for chunk in iter(lambda: response.read(_CHUNK), b""):
        f.write(chunk)
        digest.update(chunk)
        size += len(chunk)
      if expected is not None and expected.isdigit() and size != int(expected):
        raise DownloadError(f"the download stopped after {size} of {expected} bytes")
  except urllib.error.URLError as e:
    _remove(path)
    reason = e.reason if not isinstance(e, urllib.error.HTTPError) else e
    raise DownloadError(f"{url}: {_one_line(reason)}") from e
  except (OSError, http.client.HTTPException, ValueError) as e:
    _remove(path)
    raise DownloadError(f"{url}: {_one_line(e) or type(e).__name__}") from e
  except BaseException:  # DownloadError, KeyboardInterrupt: nothing partial is kept.
    _remove(path)
    raise
  logging.info("downloaded %s (%d bytes)", url, size)
  return path, digest.hexdigest()


def _extract(archive: str, files) -> dict:
  """{file: its bytes}, each member checked for size (before reading) and sha256."""
  contents = {}
  try:
    with zipfile.ZipFile(archive) as zf:
      for file in files:
        try:
          info = zf.getinfo(file.member)
        except KeyError:
          raise DownloadError(f"the archive holds no {file.member}") from None
        if info.file_size != file.size:
          raise DownloadError(f"{file.member} in the archive has {info.file_size} bytes, "
                              f"the catalog's has {file.size}; nothing kept")
        data = zf.read(info)
        actual = hashlib.sha256(data).hexdigest()
        if actual != file.sha256:
          raise DownloadError(f"{file.member} in the archive has sha256 {actual[:16]}..., "
                              f"the catalog's is {file.sha256[:16]}...; nothing kept")
        contents[file] = data
  except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:  # Corrupt or not a zip.
    raise DownloadError(f"the download is not a valid zip archive ({_one_line(e)}); "
                        "nothing kept") from e
  return contents


def _install(root: str, relative_path: str, data: bytes) -> str:
  """Writes `data` (gzipped for .gz) beside its target, then renames it into place."""
  target = os.path.join(root, *relative_path.split("/"))
  temporary = None
  try:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".download-", suffix=".part",
                                             dir=os.path.dirname(target))
    with os.fdopen(descriptor, "wb") as f:
      if target.endswith(".gz"):
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=9, mtime=0) as z:
          z.write(data)
      else:
        f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(temporary, target)
  except OSError as e:
    if temporary is not None:
      _remove(temporary)
    raise DownloadError(f"cannot write {target}: {_one_line(e)}") from e
  logging.info("saved %s", target)
  return target


def _remove(path: str) -> None:
  with contextlib.suppress(FileNotFoundError):
    os.remove(path)


def _one_line(error) -> str:
  return " ".join(str(error).split())
