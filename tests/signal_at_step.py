"""Runs launch.py, and the process signals itself when training asks for one step's batch.

Usage (from the repository root): python tests/signal_at_step.py SIGTERM 13 [launch.py flags]

A deterministic stand-in for `kill` from another shell: a tiny run takes a few
milliseconds per step, so a signal sent from outside lands at a step nobody
can predict, or after the run has finished. Here the signal is real and goes
through the real handlers, but it arrives while step `STEP` is being prepared:
SIGTERM stops the loop after that step; SIGKILL kills the process before it.
"""

import os
import runpy
import signal
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
  name, at_step, flags = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
  sys.path.insert(0, REPO)
  from transformer_jax.data.batches import (lm_batches, row_batches)  # pylint: disable=import-outside-toplevel
  # Stream batches (lm_batches.batch_at) and packed-row batches (row_batches.rows_batch_at)
  # both take (data, seed, step, ...). The training batches are the only calls with a
  # step this large: stream evaluation asks for steps 0 .. eval.num_batches - 1.
  def signalling(function):
    def wrapper(data, seed, step, *args, **kwargs):
      if step == at_step:
        os.kill(os.getpid(), getattr(signal, name))
      return function(data, seed, step, *args, **kwargs)
    return wrapper
  lm_batches.batch_at = signalling(lm_batches.batch_at)
  row_batches.rows_batch_at = signalling(row_batches.rows_batch_at)
  launch = os.path.join(REPO, "launch.py")
  sys.argv = [launch] + flags
  runpy.run_path(launch, run_name="__main__")


if __name__ == "__main__":
  main()
