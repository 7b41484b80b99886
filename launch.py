"""Entry point: python launch.py --config=configs/clm.py[:preset] [--workdir=...] [--mode=...].

Thin on purpose: it validates the config once and hands it to the experiment the
config names (transformer_jax/tasks/). Errors a user can cause end in one line on stderr and exit code 1.
"""

import logging as logging_std
import os
import re
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from transformer_jax import configuration, tasks
from transformer_jax.errors import UserError
from transformer_jax.run import compilation_cache, source_config
from transformer_jax.run.modes import ModeInputs
from transformer_jax.training import checkpointing, distributed, partitioning

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, optionally with a preset: configs/clm.py:baby.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Output folder; default runs/<config name>[-<preset>].")
_MODE = flags.DEFINE_enum("mode", "train",
                          ["train", "eval", "sample", "translate", "predict", "attention",
                           "export", "lm_eval"], "What to do.")
_PROMPT = flags.DEFINE_string("prompt", None, "Prompt for --mode=sample.")
_PROMPTS_FILE = flags.DEFINE_string(
    "prompts_file", None, "--mode=sample (clm): a file of prompts, one a line, decoded together.")
_INPUT = flags.DEFINE_string(
    "input", None, "--mode=translate or predict: a file of texts, one a line, or - for "
    "stdin; --mode=attention: the text whose attention to draw.")
_OUTPUT = flags.DEFINE_string(
    "output", None, "--mode=translate or predict: the file for the results (default "
    "stdout); --mode=attention and --mode=export: the directory to write; --mode=lm_eval: "
    "the results JSON (default <workdir>/lm_eval_step<N>.json).")
_FORMAT = flags.DEFINE_enum(
    "format", None, ["hf", "native", "peft"], "--mode=export: hf (a Hugging Face folder), "
    "native (default: the parameter tree as safetensors, int8 with "
    "--config.model.quantize=int8) or peft (a LoRA run's adapter as a PEFT folder).")
_TASKS = flags.DEFINE_string(
    "tasks", None, "--mode=lm_eval: lm-evaluation-harness task names, comma-separated.")
_INCLUDE_PATH = flags.DEFINE_string(
    "include_path", None, "--mode=lm_eval: a folder of task YAML files (local tasks).")
_NUM_FEWSHOT = flags.DEFINE_integer("num_fewshot", None, "--mode=lm_eval: few-shot examples.")
_LIMIT = flags.DEFINE_float(
    "limit", None, "--mode=lm_eval: examples per task (a count, or a fraction below 1).")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "Multi-process: HOST:PORT where the processes meet "
    "(with --num_processes and --process_id; none of them: auto-detect a cluster).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Multi-process: how many.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "Multi-process: this one's index.")
_HEARTBEAT = flags.DEFINE_integer(
    "heartbeat_timeout_seconds", 60, "Multi-process: a process silent this long is taken "
    "for dead and the others stop.")
flags.mark_flag_as_required("config")


class _QuietLibraries(logging_std.Filter):
  """Keeps INFO chatter of checkpointing and backend discovery off the console.

  Warnings and errors from every library still show, except the tracebacks orbax's
  threads log for a checkpoint write that failed (disk full...): the Checkpointer
  reports that as one line. `--verbosity=1` shows all.
  """
  _ORBAX = f"{os.sep}orbax{os.sep}"
  _NOISY = (_ORBAX, f"{os.sep}jax{os.sep}_src{os.sep}")

  def filter(self, record):
    if logging.get_verbosity() >= 1:
      return True
    if record.levelno >= logging_std.WARNING:
      return not (self._ORBAX in record.pathname and record.exc_info
                  and checkpointing.os_error_of(record.exc_info[1]) is not None)
    return not any(part in record.pathname for part in self._NOISY)


def default_workdir(config_argument: str) -> str:
  """configs/clm.py:baby -> runs/clm-baby; configs/clm.py -> runs/clm."""
  path, _, preset = config_argument.partition(":")
  name = os.path.splitext(os.path.basename(path))[0]
  return os.path.join("runs", f"{name}-{preset}" if preset else name)


def _chain(error: BaseException | None):
  """The exception, then what caused it, outermost first."""
  while error is not None:
    yield error
    error = error.__cause__ or error.__context__


def _one_line(error: BaseException) -> str:
  """The most specific line of an exception chain.

  absl and ml_collections wrap a failing config file or field in several layers
  (and sometimes in the text of a traceback); the last line of the first useful
  message is what a user needs.
  """
  for link in _chain(error):
    text = str(link).replace("\\n", "\n")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and not text.startswith("Configuration is not available"):
      last = lines[-1]
      if last.count("'") % 2:  # A repr()'d message leaves a stray closing quote.
        last = last.rstrip("'")
      return last
  return "invalid flags"


def _chain_text(error: BaseException) -> str:
  return " ".join(f"{type(link).__name__}: {link}" for link in _chain(error))


def _fail(message: str, immediately: bool = False) -> None:
  logging.flush()
  print(f"error: {message}", file=sys.stderr, flush=True)
  if immediately:
    os._exit(1)  # pylint: disable=protected-access
  sys.exit(1)


def parse_flags(argv):
  """absl's parser, but a bad flag, config file or field is one line and exit code 1."""
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # pylint: disable=broad-except
    message = _one_line(e)
    unknown = re.search(r"""KeyError: ['"]+([^'"\\]+)""", _chain_text(e))
    if unknown:  # A mistyped config field or section: name the flag that holds it.
      culprits = [a.split("=")[0] for a in argv[1:]
                  if a.startswith("--config.") and unknown.group(1) in a.split("=")[0].split(".")]
      hint = f" {message}" if message.startswith("Did you mean") else ""
      message = f"{culprits[0] if culprits else '--config'}: unknown config field.{hint}"
    _fail(message)


# Flags that only some modes read: given to another, they would be silently ignored.
_MODE_OF_FLAG = {"prompt": ("sample",), "prompts_file": ("sample",),
                 "input": ("translate", "predict", "attention"),
                 "output": ("translate", "predict", "attention", "export", "lm_eval"),
                 "format": ("export",), "tasks": ("lm_eval",), "include_path": ("lm_eval",),
                 "num_fewshot": ("lm_eval",), "limit": ("lm_eval",)}


def explicit_config_fields(argv) -> set[str]:
  """'model.mlp_dim' for each --config.model.mlp_dim=... (or --config.model.mlp_dim ...) given."""
  return {arg.split("=", 1)[0][len("--config."):] for arg in argv
          if arg.startswith("--config.")}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.get_absl_handler().addFilter(_QuietLibraries())
  for name, modes in _MODE_OF_FLAG.items():
    if flags.FLAGS[name].present and _MODE.value not in modes:
      readers = " and ".join(f"--mode={mode}" for mode in modes)
      _fail(f"--{name} is read by {readers} only, not --mode={_MODE.value}")
  try:
    # hf:DIR weights fix the model's shape: fields the command line leaves are the folder's.
    source_config.adopt(_CONFIG.value, explicit_config_fields(sys.argv))
    cfg = configuration.validate(_CONFIG.value)
    compilation_cache.enable()  # Before anything compiles: see run/compilation_cache.py.
    workdir = _WORKDIR.value or default_workdir(flags.FLAGS["config"].serialize()
                                                .split("=", 1)[1])
    partitioning.configure_cpu_devices(cfg.mesh)
    distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                           _HEARTBEAT.value)
    if not distributed.is_main_process():
      logging.set_verbosity(logging.WARNING)  # One log: process 0's.
    limit = _LIMIT.value
    inputs = ModeInputs(prompt=_PROMPT.value, prompts_file=_PROMPTS_FILE.value,
                        input_path=_INPUT.value, output_path=_OUTPUT.value,
                        format=_FORMAT.value, tasks=_TASKS.value,
                        include_path=_INCLUDE_PATH.value, num_fewshot=_NUM_FEWSHOT.value,
                        limit=int(limit) if limit is not None and limit >= 1 else limit)
    tasks.run(cfg, workdir, _MODE.value, inputs)
  except UserError as e:
    _fail(str(e))
  except OSError as e:  # Also how ml_collections reports a config file that failed to load.
    _fail(_one_line(e))
  except jax.errors.JaxRuntimeError as e:
    if jax.process_count() == 1:
      raise
    # A collective failed because another process died or stopped answering. Exit at
    # once: at exit JAX would wait for that process in a shutdown barrier, then abort.
    _fail(distributed.peer_failure_message(e), immediately=True)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
