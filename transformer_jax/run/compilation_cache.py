"""JAX's persistent compilation cache for every run: compiled programs kept across processes.

`launch.py` and `transformer_jax.load` turn it on, so a second run of the same model
finds its train step, evaluation and decoding already compiled (experiments/README.md
has the seconds it saves). The cache is the folder `$JAX_COMPILATION_CACHE_DIR` when
set (JAX's own variable), else `$XDG_CACHE_HOME/transformer_jax/jax` (by default
`~/.cache/transformer_jax/jax`); `TRANSFORMER_JAX_COMPILATION_CACHE=0` turns it off.
Programs that compile faster than `jax_persistent_cache_min_compile_time_secs` (JAX's
default, 1 s; `JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS` sets it) are not kept. An
entry is keyed by the program, the JAX version and the device, so a stale one is never
used; an unreadable (corrupt) one makes JAX warn and compile again: it never breaks a
run (tests/test_compilation_cache.py corrupts one).
"""

from __future__ import annotations

import os
from typing import Optional

import jax
from absl import logging

SWITCH = "TRANSFORMER_JAX_COMPILATION_CACHE"  # "0" (or "off", "false") turns the cache off.
_enabled: Optional[str] = None  # The folder in use, once enabled in this process.
_logged = False


def default_directory() -> str:
  """The per-user cache folder (see the module docstring)."""
  cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(os.path.abspath(cache), "transformer_jax", "jax")


def enable(directory: Optional[str] = None) -> Optional[str]:
  """Turns the cache on (once a process) in `directory` (default: see the module
  docstring) and logs where it is; returns the folder, or None when it is turned off or
  cannot be made (the run goes on uncached)."""
  global _enabled
  if _enabled is not None:
    return _enabled
  if os.environ.get(SWITCH, "1").strip().lower() in ("0", "off", "false", "no"):
    jax.config.update("jax_enable_compilation_cache", False)  # Also JAX's own variable's.
    return None
  directory = directory or jax.config.jax_compilation_cache_dir or default_directory()
  try:
    os.makedirs(directory, exist_ok=True)
  except OSError as e:
    logging.warning("compilation cache off: cannot make %s (%s)", directory, e)
    return None
  jax.config.update("jax_compilation_cache_dir", directory)
  _enabled = directory
  return directory


def log_location() -> None:
  """Says once a process where the cache is (when a run starts: an error before that stays
  the only line the user sees)."""
  global _logged
  if not _logged:
    _logged = True
    if _enabled is None:
      logging.info("compilation cache off")
    else:
      logging.info("compilation cache: %s (%s=0 turns it off)", _enabled, SWITCH)
