"""Entry point: python launch.py --config=configs/clm.py[:preset] [--workdir=...] [--mode=...].

Thin on purpose: it validates the config once and hands it to the experiment the
config names. Errors a user can cause end in one line on stderr and exit code 1.
"""

import importlib
import logging as logging_std
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from transformer_jax import configuration
from transformer_jax.errors import UserError
from transformer_jax.training import partitioning

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, optionally with a preset: configs/clm.py:baby.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Output folder; default runs/<config name>[-<preset>].")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval", "sample"], "What to do.")
_PROMPT = flags.DEFINE_string("prompt", None, "Prompt for --mode=sample.")
flags.mark_flag_as_required("config")


class _QuietLibraries(logging_std.Filter):
  """Keeps INFO chatter of checkpointing and backend discovery off the console.

  Warnings and errors from every library still show; `--verbosity=1` shows all.
  """
  _NOISY = (f"{os.sep}orbax{os.sep}", f"{os.sep}jax{os.sep}_src{os.sep}")

  def filter(self, record):
    if record.levelno >= logging_std.WARNING or logging.get_verbosity() >= 1:
      return True
    return not any(part in record.pathname for part in self._NOISY)


def default_workdir(config_argument: str) -> str:
  """configs/clm.py:baby -> runs/clm-baby; configs/clm.py -> runs/clm."""
  path, _, preset = config_argument.partition(":")
  name = os.path.splitext(os.path.basename(path))[0]
  return os.path.join("runs", f"{name}-{preset}" if preset else name)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.get_absl_handler().addFilter(_QuietLibraries())
  try:
    cfg = configuration.validate(_CONFIG.value)
    workdir = _WORKDIR.value or default_workdir(flags.FLAGS["config"].serialize()
                                                .split("=", 1)[1])
    partitioning.configure_cpu_devices(cfg.mesh)
    experiment = importlib.import_module(f"experiments.{cfg.experiment}")
    experiment.run(cfg, workdir, _MODE.value, _PROMPT.value)
  except UserError as e:
    logging.flush()
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
