"""What the trainer needs of a task's data; each task's data module (beside this one)
implements it and adds what its modes need (held-out text, pairs, labels)."""

from __future__ import annotations

from typing import Iterable, Protocol

from transformer_jax.data.tokenizers.tokenizer import Tokenizer


class TaskData(Protocol):
  """A tokenizer, training batches by step and the evaluation batches."""
  tokenizer: Tokenizer

  def train_batch_at(self, step: int) -> dict:
    """This process's rows of training batch `step`: a pure function of the step."""

  def eval_batches(self) -> Iterable[dict]:
    """The evaluation batches, the same at every evaluation."""
