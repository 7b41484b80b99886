"""Mistakes a user can make on the command line end in one clear line and exit code != 0.

Desired behaviour for every case: non-zero exit, no Python traceback, and stderr
is a single line, "error: ...", naming the field or the file.
"""

import pytest

from conftest import TRACEBACK, last_line, run_launch

TINY = "--config=configs/clm.py:tiny"


def _assert_one_clear_line(result, *expected_parts):
  assert result.returncode != 0
  assert TRACEBACK not in result.stderr, result.stderr[-3000:]
  line = last_line(result.stderr)
  assert [l for l in result.stderr.splitlines() if l.strip()] == [line], result.stderr[-3000:]
  assert line.startswith("error: ")
  for part in expected_parts:
    assert part in line, result.stderr[-3000:]
  return line


def test_unknown_config_field(tmp_path):
  result = run_launch(TINY, "--config.model.num_layerz=3", f"--workdir={tmp_path}")
  _assert_one_clear_line(result, "model.num_layerz")


def test_heads_do_not_divide_width(tmp_path):
  result = run_launch(TINY, "--config.model.num_heads=3", f"--workdir={tmp_path / 'w'}")
  line = _assert_one_clear_line(result, "model.num_heads")
  assert line == "error: config.model.num_heads: 3 heads do not divide model.model_dim=32"
  assert not (tmp_path / "w").exists()  # Config errors stop before anything is written.


def test_missing_data_file(tmp_path):
  result = run_launch(TINY, "--config.data.path=/nonexistent.txt", f"--workdir={tmp_path}")
  line = _assert_one_clear_line(result, "/nonexistent.txt")
  assert line == "error: data file not found: /nonexistent.txt"


def test_empty_data_file(tmp_path):
  path = tmp_path / "empty.txt"
  path.write_text(" \n")  # Whitespace only counts as empty.
  result = run_launch(TINY, f"--config.data.path={path}", f"--workdir={tmp_path / 'w'}")
  line = _assert_one_clear_line(result, str(path))
  assert line == f"error: corpus is empty (no non-whitespace text): {path}"


def test_invalid_utf8_data_file(tmp_path):
  path = tmp_path / "latin1.txt"
  path.write_bytes("ROMEO: caf\u00e9\n".encode("latin-1"))  # 0xe9 alone is not UTF-8.
  result = run_launch(TINY, f"--config.data.path={path}", f"--workdir={tmp_path / 'w'}")
  line = _assert_one_clear_line(result, str(path))
  assert line == f"error: data file {path} is not valid UTF-8 at byte offset 10"


@pytest.mark.parametrize("preset", ["nope"])
def test_unknown_preset(tmp_path, preset):
  result = run_launch(f"--config=configs/clm.py:{preset}", f"--workdir={tmp_path}")
  _assert_one_clear_line(result, repr(preset), "configs/clm.py")


@pytest.mark.parametrize("flag, mode, readers", [
    ("--input=-", "train", "--mode=translate and --mode=predict and --mode=attention"),
    ("--output=out.txt", "eval",
     "--mode=translate and --mode=predict and --mode=attention and --mode=export and "
     "--mode=lm_eval"),
    ("--tasks=hellaswag", "eval", "--mode=lm_eval"),
    ("--prompt=Hi", "translate", "--mode=sample"),
    ("--prompts_file=p.txt", "train", "--mode=sample"),
    ("--format=hf", "sample", "--mode=export")])
def test_a_flag_of_another_mode_is_refused(tmp_path, flag, mode, readers):
  result = run_launch(TINY, f"--workdir={tmp_path / 'w'}", f"--mode={mode}", flag)
  name = flag.split("=")[0]
  assert _assert_one_clear_line(result) == (
      f"error: {name} is read by {readers} only, not --mode={mode}")
  assert not (tmp_path / "w").exists()
