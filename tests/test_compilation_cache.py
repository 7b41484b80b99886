"""JAX's persistent compilation cache (transformer_jax/run/compilation_cache.py).

Runs that share a cache give the losses of a run without one, and an unreadable entry
never breaks a run: JAX warns and compiles again.
"""

import pytest

from conftest import by_step, run_launch
from transformer_jax.run import compilation_cache

FLAGS = ("--config=configs/clm.py:tiny", "--config.train.num_steps=6",
         "--config.train.log_every_steps=1", "--config.decode.max_new_tokens=0")


def _run(workdir, cache) -> dict[int, float]:
  env = ({compilation_cache.SWITCH: "0", "JAX_COMPILATION_CACHE_DIR": None} if cache is None
         else {"JAX_COMPILATION_CACHE_DIR": str(cache)})
  result = run_launch(*FLAGS, f"--workdir={workdir}", env=env)
  assert result.returncode == 0, result.stderr[-3000:]
  if cache is None:
    assert "compilation cache off" in result.stderr
  else:
    assert f"compilation cache: {cache} " in result.stderr  # Said once, where it is.
  return by_step(workdir, "train_loss")


@pytest.mark.slow  # Four launch.py runs.
def test_shared_and_corrupt_caches_give_the_uncached_losses(tmp_path):
  cache = tmp_path / "cache"
  uncached = _run(tmp_path / "none", None)
  assert _run(tmp_path / "first", cache) == uncached  # Fills the cache.
  entries = [path for path in cache.rglob("*") if path.is_file()]
  assert entries
  assert _run(tmp_path / "second", cache) == uncached  # Reads it.
  for path in entries:  # Every entry unreadable: JAX warns and compiles again.
    path.write_bytes(b"not a compiled program")
  assert _run(tmp_path / "corrupt", cache) == uncached


def test_the_switch_turns_it_off_and_a_folder_that_cannot_be_made_too(tmp_path, monkeypatch):
  monkeypatch.setattr(compilation_cache, "_enabled", None)
  monkeypatch.setenv(compilation_cache.SWITCH, "0")
  assert compilation_cache.enable() is None
  monkeypatch.delenv(compilation_cache.SWITCH)
  blocker = tmp_path / "file"
  blocker.write_text("")
  assert compilation_cache.enable(str(blocker / "cache")) is None


def test_the_default_folder_is_per_user(monkeypatch, tmp_path):
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  assert compilation_cache.default_directory() == str(tmp_path / "transformer_jax" / "jax")

