"""Shared helpers: run launch.py in a subprocess, read its metrics, share finished runs.

Subprocess runs set XLA_FLAGS themselves, so the number of emulated CPU devices
is explicit in every test. Runs that several tests need (`tiny_run`,
`reference_run`) happen once per session; tests that change a workdir copy it
first with `copy_workdir`.
"""

import fcntl
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from typing import NamedTuple

# One compilation cache for every process of a test session (this one, its xdist workers
# and every launch.py they start), set before JAX is imported: the second process that
# compiles the tiny GPT finds it compiled. Programs of any compile time are kept (JAX's
# default keeps those of 1 s or more); the folder goes when the session ends.
_CACHE_VARIABLE = "TRANSFORMER_JAX_TEST_COMPILATION_CACHE"
_OWN_CACHE = _CACHE_VARIABLE not in os.environ
if _OWN_CACHE:
  os.environ[_CACHE_VARIABLE] = tempfile.mkdtemp(prefix="transformer_jax_test_cache_")
os.environ["JAX_COMPILATION_CACHE_DIR"] = os.environ[_CACHE_VARIABLE]
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
os.environ.pop("TRANSFORMER_JAX_COMPILATION_CACHE", None)  # A developer's "off" stays outside.
# XLA's CPU backend without LLVM's optimisations: tiny test programs compile about a third
# faster and run as fast; every process of the session (and each comparison it makes)
# uses the same setting. Production runs keep XLA's default.
TEST_XLA_FLAGS = "--xla_backend_optimization_level=0"
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_XLA_FLAGS}".strip()

import pytest  # pylint: disable=wrong-import-position

from transformer_jax.training.metrics_writer import read_metrics  # pylint: disable=wrong-import-position

REPO = pathlib.Path(__file__).resolve().parent.parent
SIGNAL_AT_STEP = pathlib.Path(__file__).resolve().parent / "signal_at_step.py"
DURING_TRAINING = pathlib.Path(__file__).resolve().parent / "during_training.py"
TRACEBACK = "Traceback (most recent call last)"
# The catalogued datasets (transformer_jax/data/corpora/catalog.py), as CI and developers have them.
SHARED_DATA = REPO.parent / "shared" / "data"

# Every step logged, an evaluation and a checkpoint every 10 steps, dropout on (so
# resumes and sharding must get the dropout keys right too), no sampling.
REFERENCE_FLAGS = ("--config=configs/clm.py:tiny", "--config.train.num_steps=40",
                   "--config.model.dropout_rate=0.1",
                   "--config.train.log_every_steps=1", "--config.train.eval_every_steps=10",
                   "--config.train.checkpoint_every_steps=10",
                   "--config.decode.max_new_tokens=0")


def pytest_unconfigure(config):
  """The session's compilation cache goes with it (once, by the process that made it)."""
  if _OWN_CACHE and not hasattr(config, "workerinput"):
    shutil.rmtree(os.environ[_CACHE_VARIABLE], ignore_errors=True)


class Run(NamedTuple):
  returncode: int
  stdout: str
  stderr: str


def run_launch(*flags: str, devices: int = 1, timeout: float = 300,
               signal_at_step: tuple[str, int] | None = None,
               during_training: tuple[int, str, str] | None = None,
               env: dict[str, str] | None = None) -> Run:
  """`python launch.py FLAGS` from the repository root on `devices` emulated CPU devices.

  signal_at_step=('SIGTERM', 13): the process signals itself when the training
  loop asks for the batch of step 13 (see signal_at_step.py).
  during_training=(25, commands_json, results_json): at the batch of step 25, the
  launch.py commands listed in commands_json run beside it (see during_training.py).
  env: variables set (or, with None values, removed) for this run.
  """
  overrides, env = env or {}, dict(os.environ)
  for name, value in overrides.items():
    if value is None:
      env.pop(name, None)
    else:
      env[name] = value
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices} {TEST_XLA_FLAGS}"
  env["JAX_PLATFORMS"] = "cpu"
  command = [sys.executable, str(REPO / "launch.py")]
  if signal_at_step is not None:
    name, step = signal_at_step
    command = [sys.executable, str(SIGNAL_AT_STEP), name, str(step)]
  if during_training is not None:
    step, commands_path, results_path = during_training
    command = [sys.executable, str(DURING_TRAINING), str(step), commands_path, results_path]
  completed = subprocess.run(command + list(flags), cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=timeout, check=False)
  return Run(completed.returncode, completed.stdout, completed.stderr)


def init_decoder(config, seed: int = 0):
  """(Decoder(config), its initial params): for tests that run the model in-process."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from transformer_jax.models.decoder import Decoder  # pylint: disable=import-outside-toplevel
  model = Decoder(config)
  example = jnp.zeros((1, config.max_length), jnp.int32)
  params = jax.jit(lambda key: model.init(key, example, deterministic=True)["params"])(
      jax.random.key(seed))
  return model, params


def deterministic_apply(model):
  """jit of (params, tokens, **kwargs) -> logits, without dropout."""
  import jax  # pylint: disable=import-outside-toplevel
  return jax.jit(lambda params, tokens, **kwargs: model.apply(
      {"params": params}, tokens, deterministic=True, **kwargs).logits)


def last_line(text: str) -> str:
  lines = [line for line in text.splitlines() if line.strip()]
  return lines[-1] if lines else ""


def by_step(workdir, key: str) -> dict[int, float]:
  """{step: value} of `key` from metrics.jsonl; the last record wins (resumes re-log)."""
  return {r["step"]: r[key] for r in read_metrics(str(workdir)) if key in r}


def copy_workdir(source, target) -> pathlib.Path:
  """A private copy of a shared run's workdir (mtimes kept)."""
  shutil.copytree(source, target)
  return pathlib.Path(target)


def _once(factory, name: str, make) -> pathlib.Path:
  """A folder `make(folder)` fills once a test session: under pytest-xdist the first worker
  that needs it makes it (holding a lock) and the others wait and read it."""
  root = factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent  # The session's folder, above each worker's own.
  shared = root / "shared_runs"
  shared.mkdir(exist_ok=True)
  folder, done = shared / name, shared / f"{name}.done"
  with open(shared / f"{name}.lock", "w", encoding="utf-8") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not done.exists():
      shutil.rmtree(folder, ignore_errors=True)  # What a failed attempt left.
      folder.mkdir()
      make(folder)
      done.touch()
  return folder


def _finished_run(factory, name: str, flags: tuple[str, ...]) -> pathlib.Path:
  """The workdir of `launch.py FLAGS`, run once a test session (see `_once`)."""

  def make(folder):
    result = run_launch(*flags, f"--workdir={folder / 'workdir'}")
    assert result.returncode == 0, result.stderr[-3000:]

  return _once(factory, name, make) / "workdir"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> pathlib.Path:
  """Workdir of the plain tiny preset: 20 steps, checkpoints 10 and 20, a sample. Read-only."""
  return _finished_run(tmp_path_factory, "tiny_run", ("--config=configs/clm.py:tiny",))


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory) -> pathlib.Path:
  """Workdir of REFERENCE_FLAGS on one device, run without interruption. Read-only."""
  return _finished_run(tmp_path_factory, "reference_run", REFERENCE_FLAGS)


@pytest.fixture(scope="session")
def mlm_tiny_run(tmp_path_factory) -> pathlib.Path:
  """Workdir of configs/mlm.py:tiny (30 steps, a character vocabulary). Read-only."""
  return _finished_run(tmp_path_factory, "mlm_tiny_run", ("--config=configs/mlm.py:tiny",))


@pytest.fixture(scope="session")
def seq2seq_run(tmp_path_factory) -> pathlib.Path:
  """Workdir of configs/seq2seq.py:tiny (30 steps). Read-only."""
  return _finished_run(tmp_path_factory, "seq2seq_run", ("--config=configs/seq2seq.py:tiny",))


class Evaluated(NamedTuple):
  workdir: pathlib.Path  # A copy of the run, with --mode=eval's record appended.
  result: Run  # --mode=eval's.
  final: dict  # The run's own last evaluation, before --mode=eval.


@pytest.fixture(scope="session")
def seq2seq_evaluated(tmp_path_factory, seq2seq_run) -> Evaluated:
  """`--mode=eval` of a copy of seq2seq_run (its teacher-forced metrics and the test BLEU),
  once a session for the tests that read it. Read-only."""

  def make(folder):
    workdir = copy_workdir(seq2seq_run, folder / "workdir")
    final = [r for r in read_metrics(str(workdir)) if "eval_loss" in r][-1]
    result = run_launch("--config=configs/seq2seq.py:tiny", f"--workdir={workdir}",
                        "--mode=eval")
    assert result.returncode == 0, result.stderr[-3000:]
    (folder / "result.json").write_text(json.dumps({"run": result, "final": final}))

  folder = _once(tmp_path_factory, "seq2seq_evaluated", make)
  saved = json.loads((folder / "result.json").read_text())
  return Evaluated(folder / "workdir", Run(*saved["run"]), saved["final"])


@pytest.fixture(scope="session")
def sft_run(tmp_path_factory) -> pathlib.Path:
  """Workdir of configs/sft.py:tiny (a tiny GPT trained on the Tatoeba pairs). Read-only."""
  return _finished_run(tmp_path_factory, "sft_run", ("--config=configs/sft.py:tiny",))


@pytest.fixture(scope="session")
def classify_run(tmp_path_factory) -> pathlib.Path:
  """configs/classify.py:tiny on UCI sentiment, 6 steps (labels.json holds 0, 1). Read-only."""
  return _finished_run(tmp_path_factory, "classify_run", (
      "--config=configs/classify.py:tiny", f"--config.data.data_dir={SHARED_DATA}",
      "--config.train.num_steps=6"))


@pytest.fixture(scope="session")
def classify_lora_run(tmp_path_factory, mlm_base) -> pathlib.Path:
  """LoRA on `mlm_base` for UCI sentiment, 6 steps: its checkpoints hold the adapters and the
  head, its config.json names the base. Read-only."""
  return _finished_run(tmp_path_factory, "classify_lora_run", (
      "--config=configs/classify.py:tiny", f"--config.data.data_dir={SHARED_DATA}",
      "--config.train.num_steps=6", f"--config.train.init_from={mlm_base}",
      "--config.finetune.method=lora"))


@pytest.fixture(scope="module")
def seq2seq():
  """A small encoder-decoder with random parameters and a padded source batch."""
  from decoding_models import seq2seq_model  # pylint: disable=import-outside-toplevel
  return seq2seq_model()


def tiny_config(config_module: str = "clm", **overrides):
  """The validated tiny preset of configs/<config_module>.py with dotted overrides
  (`**{"train.init_from": path}`), for tests that build tasks in-process."""
  import importlib  # pylint: disable=import-outside-toplevel
  from transformer_jax import configuration  # pylint: disable=import-outside-toplevel
  config = importlib.import_module(f"configs.{config_module}").get_config("tiny")
  for path, value in overrides.items():
    section, field = path.split(".")
    setattr(config[section], field, value)
  return configuration.validate(config)


@pytest.fixture(scope="session")
def mlm_base(tmp_path_factory) -> pathlib.Path:
  """A tiny BERT with a byte-level BPE (any text encodes): a base to fine-tune. Read-only."""
  return _finished_run(tmp_path_factory, "mlm_base", (
      "--config=configs/mlm.py:tiny", "--config.data.tokenizer=bpe",
      "--config.data.vocab_size=300", "--config.model.max_length=48"))
