"""Errors a user can cause. `launch.py` prints them as one line and exits non-zero."""


class UserError(Exception):
  """Base class: a problem with the user's input, not a bug in the library."""


class ConfigError(UserError):
  """A config field holds an invalid value. The message names the field."""

  def __init__(self, field: str, message: str):
    super().__init__(f"config.{field}: {message}")
    self.field = field


class DataError(UserError):
  """A data file is missing, empty or unreadable. The message names the file."""


class CheckpointError(UserError):
  """A checkpoint does not fit the config, or none can be restored."""


class CheckpointMismatchError(CheckpointError):
  """The latest checkpoint was written for another model or tokenizer.

  `differences` lists each (section, key) that differs, e.g. ("model", "vocab_size"),
  so callers can say where a difference comes from without parsing the message.
  """

  def __init__(self, message: str, differences: list[tuple[str, str]]):
    super().__init__(message)
    self.differences = differences


class NonFiniteTrainingError(UserError):
  """Training stopped: the loss or gradients stayed NaN or infinite, or the parameters became so.

  The message names the step and the usual causes; no checkpoint of non-finite
  values is ever written, so the latest checkpoint is still a good one.
  """


class WorkdirLockedError(UserError):
  """Another training run holds the workdir. The message names the holder."""


class CheckpointWriteError(UserError):
  """A checkpoint could not be written (disk full, permission). The previous one is intact."""
