"""Property: `configuration.validate` accepts a config or raises one ConfigError line naming a
field, whatever value a numeric field holds: wrong types, NaN, inf, huge or negative numbers.

Every numeric field of every section of configs/clm.py, configs/mlm.py and configs/seq2seq.py
(every preset), one to three fields at a time.
"""

import ml_collections
from hypothesis import given
from hypothesis import strategies as st

from configs import clm, mlm, seq2seq
from fuzzing import assert_one_line_user_error, fuzz_settings
from transformer_jax import configuration
from transformer_jax.errors import ConfigError

CONFIGS = [(module, preset) for module in (clm, mlm, seq2seq) for preset in module.PRESETS]


def _numeric_fields(config: ml_collections.ConfigDict) -> list[str]:
  return sorted(f"{section}.{name}" for section, values in config.items()
                if isinstance(values, ml_collections.ConfigDict)
                for name, value in values.items()
                if isinstance(value, (int, float)) and not isinstance(value, bool))


FIELDS = sorted({field for module, preset in CONFIGS
                 for field in _numeric_fields(module.get_config(preset))})

_NUMBER = st.one_of(
    st.integers(-10, 10), st.integers(), st.integers(-2**70, 2**70),
    st.sampled_from([0, -1, 1, 2**31 - 1, 2**31, 2**63, -2**63, 10**400, -10**400, 10**5000]),
    st.floats(), st.sampled_from([float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1e-320,
                                  1e308, 0.5, 1.0, 1.5]))
_VALUE = st.one_of(_NUMBER, _NUMBER, st.booleans(), st.none(), st.text(max_size=5),
                   st.lists(_NUMBER, max_size=2))


@fuzz_settings(600)
@given(config=st.sampled_from(CONFIGS),
       changes=st.lists(st.tuples(st.sampled_from(FIELDS), _VALUE), min_size=1, max_size=3))
def test_any_numeric_value_validates_or_names_a_field(config, changes):
  module, preset = config
  values = module.get_config(preset).to_dict()
  changes = dict(changes)  # A field drawn twice: the last value.
  for field, value in changes.items():
    section, name = field.split(".")
    values[section][name] = value
  try:
    cfg = configuration.validate(ml_collections.ConfigDict(values))
  except ConfigError as e:
    assert_one_line_user_error(e)
    assert str(e).startswith(f"config.{e.field}: ")
    return
  # Accepted: every value of the right type and finite (NaN or inf never passes).
  for field in changes:
    section, name = field.split(".")
    accepted = getattr(getattr(cfg, section), name)
    assert type(accepted) in (int, float) and accepted == accepted
    assert abs(accepted) != float("inf")
