"""Config fields by dotted name ('model.quantize'), set on a config and validated again.

What launch.py's --config.* flags do for the command line, for Python callers:
`transformer_jax.load(path, **overrides)`.
An unknown field or a value of the wrong type is one ConfigError line naming it; the
whole config is validated as launch.py validates it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections

from transformer_jax import configuration
from transformer_jax.errors import ConfigError


def apply(config: ml_collections.ConfigDict, overrides: dict[str, Any]) -> None:
  """Sets each 'section.field' of `overrides` (a field the config lacks but its section
  has, with its default, too); an unknown or ill-typed one is one line."""
  for name, value in overrides.items():
    section, _, field = name.partition(".")
    fields = ({f.name for f in dataclasses.fields(configuration.SECTIONS[section])}
              if section in configuration.SECTIONS else set())
    if field not in fields or (section, field) in configuration.DERIVED_FIELDS:
      raise ConfigError(name, "unknown config field")
    try:
      with config.unlocked():
        if section not in config:
          config[section] = ml_collections.ConfigDict()
        config[section][field] = value
    except (TypeError, ValueError) as e:
      raise ConfigError(name, " ".join(str(e).split())) from None


def config_dict(values: dict) -> ml_collections.ConfigDict:
  """A locked ConfigDict of a config.json (the tokenizer's vocab_size left out: derived)."""
  values = {section: dict(fields) if isinstance(fields, dict) else fields
            for section, fields in values.items()}
  if isinstance(values.get("model"), dict):
    values["model"].pop("vocab_size", None)
  config = ml_collections.ConfigDict(values)
  config.lock()
  return config

