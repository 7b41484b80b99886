"""Hypothesis settings shared by the fuzz tests (tests/test_fuzz_*.py).

By default (CI) each test tries a fixed, derandomized set of examples sized to take
a few seconds on 2 cores. `FUZZ_SCALE=100 python -m pytest -q tests/test_fuzz_*.py
--hypothesis-show-statistics` tries 100 times as many, drawn at random (no example
database is written); experiments/README.md records such a run.
"""

import os

from hypothesis import HealthCheck, settings

SCALE = int(os.environ.get("FUZZ_SCALE", "1"))


def fuzz_settings(examples: int) -> settings:
  """`examples` cases in CI (the same ones every run); SCALE times as many, random, locally."""
  return settings(max_examples=examples * SCALE, deadline=None, derandomize=SCALE == 1,
                  database=None, suppress_health_check=[HealthCheck.too_slow,
                                                        HealthCheck.data_too_large])


def assert_one_line_user_error(error: BaseException) -> None:
  """The project's user error: launch.py prints it as one line."""
  from transformer_jax.errors import UserError  # pylint: disable=import-outside-toplevel
  assert isinstance(error, UserError), repr(error)
  message = str(error)
  assert message and "\n" not in message and "\r" not in message, repr(message)
