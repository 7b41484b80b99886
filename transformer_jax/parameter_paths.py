"""Parameters by path: 'block_0/attention/query/kernel', selected by regular expressions.

A path joins the parameter tree's keys with '/'. Selections take comma-separated
regexes (`config_choices.patterns`), each matched against whole paths with
`re.fullmatch`, as train.trainable and train.init_unmatched do. `split` and
`merge` cut a nested parameter dict in two and put it back together, so a
function can take gradients of one part only.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Mapping

import jax
from flax import traverse_util

from transformer_jax.errors import ConfigError

SEPARATOR = "/"


def flat(params: Mapping) -> dict[str, Any]:
  """{path: leaf} of a nested parameter dict (leaves may be boxed)."""
  return traverse_util.flatten_dict(dict(params), sep=SEPARATOR)


def nested(leaves: Mapping[str, Any]) -> dict:
  """The inverse of `flat`."""
  return traverse_util.unflatten_dict(dict(leaves), sep=SEPARATOR)


def matching(paths: Iterable[str], patterns: Iterable[str]) -> set[str]:
  """The paths that some pattern matches as a whole."""
  compiled = [re.compile(p) for p in patterns]
  return {path for path in paths if any(p.fullmatch(path) for p in compiled)}


def select(params: Mapping, patterns: tuple[str, ...], field: str) -> frozenset[str]:
  """The paths matched by `patterns`. A pattern that matches no path is a ConfigError of
  `field`, since it is almost always a typo."""
  paths = list(flat(params))
  for pattern in patterns:
    if not matching(paths, [pattern]):
      raise ConfigError(field, f"{pattern!r} matches no parameter; paths look like "
                        f"{paths[0]!r} (re.fullmatch, comma-separated)")
  return frozenset(matching(paths, patterns))


def split(params: Mapping, chosen: frozenset[str]) -> tuple[dict, dict]:
  """(the parameters at `chosen` paths, the rest), each a nested dict."""
  leaves = flat(params)
  return (nested({p: v for p, v in leaves.items() if p in chosen}),
          nested({p: v for p, v in leaves.items() if p not in chosen}))


def merge(first: Mapping, second: Mapping) -> dict:
  """The union of two nested dicts with disjoint paths (the inverse of `split`)."""
  return nested({**flat(first), **flat(second)})


def size(params: Any) -> int:
  """The number of values in a parameter tree."""
  return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(params))
