"""Non-finite training steps: skipped on the device, counted on the host, never checkpointed.

A step whose loss or gradient norm is NaN or infinite keeps the parameters and
optimizer state it started from (`keep_if_finite`, inside the jitted step); its
step counter still advances, so the next step's batch and dropout key are the
ones an unskipped run would use. The training loop hands each call's per-step
flags to a `NonFiniteWatch`, which counts skipped steps in a row and says at
which step `train.max_nonfinite_steps` of them was reached. `all_finite` checks
a whole train state before it is saved.
"""

from __future__ import annotations

import collections
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from transformer_jax.errors import NonFiniteTrainingError

USUAL_CAUSES = ("usual causes: train.learning_rate too high, gradient clipping off "
                "(train.grad_clip_norm=0), float16 overflow (model.dtype)")


def step_is_finite(loss: jax.Array, grad_norm: jax.Array) -> jax.Array:
  """bool scalar: the step may be applied."""
  return jnp.isfinite(loss) & jnp.isfinite(grad_norm)


def keep_if_finite(finite: jax.Array, new: Any, old: Any) -> Any:
  """`new` where `finite`, else `old`, leaf by leaf (the same tree structure).

  A select rather than `lax.cond`: XLA fuses it into the update that computes
  `new` (no extra pass over memory, no copy of donated buffers), and a finite
  step's values are exactly `new`, bit for bit.
  """
  return jax.tree_util.tree_map(lambda n, o: jnp.where(finite, n, o), new, old)


@jax.jit
def _all_finite(leaves: list[jax.Array]) -> jax.Array:
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def all_finite(tree: Any) -> bool:
  """Whether every floating-point value in `tree` is finite (one jitted reduction)."""
  leaves = [leaf for leaf in jax.tree_util.tree_leaves(tree)
            if jnp.issubdtype(leaf.dtype, jnp.inexact)]
  return not leaves or bool(_all_finite(leaves))


class NonFiniteWatch:
  """Counts skipped steps in a row from the step flags of each jitted call, in step order.

  `add(first_step, flags)` queues a call's [k] bool flags (device arrays, step
  `first_step + i + 1` for flag i, as metrics.jsonl numbers steps); `poll` reads
  those that are ready (all of them with `wait`), so checking every call never
  stalls an accelerator. `stop_step` is the step at which `limit` flagged steps
  in a row were reached, or None.
  """

  def __init__(self, limit: int):
    self.limit = limit
    self.in_a_row = 0
    self.stop_step: Optional[int] = None
    self._queue: collections.deque = collections.deque()

  def add(self, first_step: int, flags: jax.Array) -> None:
    self._queue.append((first_step, flags))

  def poll(self, wait: bool = False) -> Optional[int]:
    while self._queue and (wait or self._queue[0][1].is_ready()):
      first_step, flags = self._queue.popleft()
      for offset, flagged in enumerate(np.asarray(flags)):
        self.in_a_row = self.in_a_row + 1 if flagged else 0
        if self.in_a_row >= self.limit and self.stop_step is None:
          self.stop_step = first_step + offset + 1
    return self.stop_step

  def error(self, latest_checkpoint: Optional[int]) -> NonFiniteTrainingError:
    return NonFiniteTrainingError(
        f"training stopped at step {self.stop_step}: the loss or gradient norm was NaN or "
        f"infinite in {self.limit} steps in a row (train.max_nonfinite_steps), which were "
        f"skipped; {USUAL_CAUSES}; {_kept(latest_checkpoint)}")


def nonfinite_parameters_error(step: int,
                               latest_checkpoint: Optional[int]) -> NonFiniteTrainingError:
  """Raised instead of saving a checkpoint of NaN or infinite values."""
  return NonFiniteTrainingError(
      f"training stopped at step {step}: the parameters or optimizer state hold NaN or "
      f"infinite values, so no checkpoint was saved; {USUAL_CAUSES}; {_kept(latest_checkpoint)}")


def _kept(latest_checkpoint: Optional[int]) -> str:
  if latest_checkpoint is None:
    return "no checkpoint was written"
  return f"the latest checkpoint, step {latest_checkpoint}, is intact"
