"""The data pipeline through launch.py: BPE, packed documents, sliding windows, bad input.

The corpus is a JSONL file of Tiny Shakespeare speeches (one document each), so
BPE training takes well under a second.
"""

import gzip
import json
import os

import pytest

from conftest import REFERENCE_FLAGS, REPO, TRACEBACK, by_step, last_line, run_launch
from transformer_jax.data.tokenizers.bpe_tokenizer import BpeTokenizer
from transformer_jax.training.metrics_writer import read_metrics


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  with gzip.open(REPO / "experiments" / "data" / "tinyshakespeare.txt.gz", "rt") as f:
    speeches = [s for s in f.read(60_000).split("\n\n") if s.strip()]
  path = tmp_path_factory.mktemp("corpus") / "speeches.jsonl"
  path.write_text("".join(json.dumps({"body": s}) + "\n" for s in speeches))
  return path


def _flags(corpus, workdir):
  return REFERENCE_FLAGS + (
      f"--workdir={workdir}", f"--config.data.path={corpus}", "--config.data.format=jsonl",
      "--config.data.text_field=body", "--config.data.tokenizer=bpe",
      "--config.data.vocab_size=320", "--config.data.packing=documents",
      "--config.data.chunk_overlap=4")


@pytest.mark.slow
def test_packed_bpe_run_resumes_exactly(tmp_path, corpus):
  uninterrupted, resumed = tmp_path / "uninterrupted", tmp_path / "resumed"
  assert run_launch(*_flags(corpus, uninterrupted)).returncode == 0
  stopped = run_launch(*_flags(corpus, resumed), signal_at_step=("SIGTERM", 13))
  assert "saved a checkpoint at step 14" in stopped.stderr, stopped.stderr[-2000:]
  assert run_launch(*_flags(corpus, resumed)).returncode == 0
  for key in ("train_loss", "eval_loss"):
    assert by_step(resumed, key) == by_step(uninterrupted, key)  # Bit for bit.
  assert (resumed / "tokenizer.json").read_bytes() == (uninterrupted / "tokenizer.json").read_bytes()

  # Sliding-window evaluation scores every held-out token exactly once.
  result = run_launch(*_flags(corpus, uninterrupted), "--mode=eval", "--config.eval.stride=8")
  assert result.returncode == 0, result.stderr[-2000:]
  record = [r for r in read_metrics(str(uninterrupted)) if r.get("eval_stride") == 8][-1]
  # More tokens than the 2 x 8 packed evaluation batches of 32 hold: the whole held-out text.
  assert record["eval_tokens"] > 2 * 8 * 32

  # Another tokenizer file with the same vocabulary size: one line naming it.
  other = tmp_path / "other.json"
  BpeTokenizer.train(["completely different text " * 200, "zebra quartz " * 300], 320,
                     ("<pad>", "<eos>")).save(str(other))
  before = (uninterrupted / "metrics.jsonl").read_bytes()
  result = run_launch(*_flags(corpus, uninterrupted), "--mode=eval",
                      f"--config.data.tokenizer_path={other}")
  assert result.returncode == 1
  line = last_line(result.stderr)
  assert line.startswith(f"error: tokenizer file {other} does not match the checkpoint")
  assert TRACEBACK not in result.stderr
  assert (uninterrupted / "metrics.jsonl").read_bytes() == before


@pytest.mark.parametrize("flags, expected", [
    (("--config.data.path=/nonexistent/*.txt",), "/nonexistent/*.txt"),
    (("--config.data.format=jsonl", "--config.data.text_field=missing"), ":1"),
])
def test_bad_corpus_is_one_line(tmp_path, corpus, flags, expected):
  path_flags = () if flags[0].startswith("--config.data.path") else (
      f"--config.data.path={corpus}",)
  result = run_launch("--config=configs/clm.py:tiny", f"--workdir={tmp_path / 'w'}",
                      *path_flags, *flags)
  assert result.returncode == 1
  line = last_line(result.stderr)
  assert line.startswith("error: ") and expected in line, result.stderr[-2000:]
  assert TRACEBACK not in result.stderr
  assert not os.path.exists(tmp_path / "w")
