"""Runs launch.py; when training asks for one step's batch, runs other launch.py commands
beside it, one after the other, and records how they ended.

Usage (from the repository root):
  python tests/during_training.py STEP COMMANDS.json RESULTS.json [launch.py flags]
COMMANDS.json: a list of launch.py argument lists. RESULTS.json gets this process's pid
and, per command, its return code, stdout and stderr.

A deterministic way to start a second run while the first is training: the first
waits, mid-run, holding what it holds, until the others have finished.
"""

import json
import os
import runpy
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT_SECONDS = 120


def _run_all(commands: list[list[str]]) -> list[dict]:
  results = []
  for flags in commands:
    done = subprocess.run([sys.executable, os.path.join(REPO, "launch.py")] + flags, cwd=REPO,
                          capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    results.append({"returncode": done.returncode, "stdout": done.stdout,
                    "stderr": done.stderr})
  return results


def main() -> None:
  at_step, commands_path, results_path, flags = (int(sys.argv[1]), sys.argv[2], sys.argv[3],
                                                 sys.argv[4:])
  with open(commands_path, encoding="utf-8") as f:
    commands = json.load(f)
  sys.path.insert(0, REPO)
  from transformer_jax.data.batches import lm_batches  # pylint: disable=import-outside-toplevel
  original = lm_batches.batch_at

  # As in signal_at_step.py: training batches are the only stream batches with a step
  # this large (evaluation asks for steps 0 .. eval.num_batches - 1).
  def batch_at(data, seed, step, *args, **kwargs):
    if step == at_step:
      with open(results_path, "w", encoding="utf-8") as f:
        json.dump({"pid": os.getpid(), "commands": _run_all(commands)}, f)
    return original(data, seed, step, *args, **kwargs)

  lm_batches.batch_at = batch_at
  launch = os.path.join(REPO, "launch.py")
  sys.argv = [launch] + flags
  runpy.run_path(launch, run_name="__main__")


if __name__ == "__main__":
  main()
