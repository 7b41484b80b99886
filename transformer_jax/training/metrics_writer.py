"""Metrics to `metrics.jsonl` (one JSON object per line, each with `step`) and TensorBoard.

A NaN or infinite value is written as `null`, so every line stays strict JSON, and
left out of TensorBoard.
"""

import json
import math
import os
from typing import Any, Optional

import jax

FILE_NAME = "metrics.jsonl"


def _json_value(value: Any) -> Any:
  if isinstance(value, float) and not math.isfinite(value):
    # JSON has no NaN/inf: `null`, which every JSON reader loads (pandas as NaN).
    return None
  return value


class MetricsWriter:
  """Appends to the workdir's metrics; a resumed run continues the same files.

  In a multi-host run only process 0 writes (`is_writer`); the others' writes
  are no-ops, so a shared workdir gets each record once.
  """

  def __init__(self, workdir: str, enable_tensorboard: bool = True,
               is_writer: Optional[bool] = None):
    self.path = os.path.join(workdir, FILE_NAME)
    self._file, self._tensorboard = None, None
    if is_writer is None:
      is_writer = jax.process_index() == 0
    if not is_writer:
      return
    self._file = open(self.path, "a", encoding="utf-8")
    if enable_tensorboard:
      from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
      self._tensorboard = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, metrics: dict[str, Any]) -> None:
    if self._file is None:
      return
    record = {"step": int(step), **{k: _json_value(v) for k, v in metrics.items()}}
    self._file.write(json.dumps(record) + "\n")
    self._file.flush()
    if self._tensorboard is not None:
      for name, value in metrics.items():
        # A NaN/inf point is left out (a gap in the curve; tensorboardX would warn).
        if (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value)):
          self._tensorboard.add_scalar(name, value, step)

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
    if self._tensorboard is not None:
      self._tensorboard.close()


def read_metrics(workdir: str) -> list[dict[str, Any]]:
  """All records of a workdir's metrics.jsonl, in order."""
  with open(os.path.join(workdir, FILE_NAME), encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]
