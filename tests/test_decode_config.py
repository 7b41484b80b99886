"""The decoding fields of `config.decode`: defaults, flags, and errors that name them."""

import pytest

from configs import clm, mlm, seq2seq
from transformer_jax import configuration
from transformer_jax.errors import ConfigError


def _with(config, **decode):
  for field, value in decode.items():
    setattr(config.decode, field, value)
  return config


def test_defaults_keep_older_config_files_working():
  config = clm.get_config("tiny")
  for field in ("top_p", "beam_size", "length_penalty"):
    del config.decode[field]
  decode = configuration.validate(config).decode
  assert (decode.top_p, decode.beam_size, decode.length_penalty) == (1.0, 4, 0.6)


def test_seq2seq_translates_by_beam_search_of_four_with_alpha_0_6():
  decode = configuration.validate(seq2seq.get_config()).decode
  assert (decode.strategy, decode.beam_size, decode.length_penalty) == ("beam", 4, 0.6)


@pytest.mark.parametrize("field, value, message", [
    ("top_p", 0.0, "config.decode.top_p: must be in (0, 1], got 0.0"),
    ("top_p", 1.5, "config.decode.top_p: must be in (0, 1], got 1.5"),
    ("beam_size", 0, "config.decode.beam_size: must be >= 1, got 0"),
    ("length_penalty", -0.1, "config.decode.length_penalty: must be >= 0, got -0.1"),
    ("strategy", "nucleus",
     "config.decode.strategy: must be one of ('greedy', 'sample', 'beam'), got 'nucleus'"),
])
def test_invalid_decode_field_is_named(field, value, message):
  with pytest.raises(ConfigError) as error:
    configuration.validate(_with(seq2seq.get_config("tiny"), **{field: value}))
  assert str(error.value) == message


def test_beam_search_is_for_the_experiments_that_generate():
  with pytest.raises(ConfigError) as error:
    configuration.validate(_with(mlm.get_config("tiny"), strategy="beam"))
  assert error.value.field == "decode.strategy"
  assert configuration.validate(_with(clm.get_config("tiny"), strategy="beam")).decode.strategy \
      == "beam"


def test_valid_values_pass():
  decode = configuration.validate(
      _with(seq2seq.get_config("tiny"), top_p=0.9, beam_size=1, length_penalty=0)).decode
  assert (decode.top_p, decode.beam_size, decode.length_penalty) == (0.9, 1, 0.0)


def test_validation_bleu_is_off_unless_asked_for_and_for_seq2seq_only():
  config = clm.get_config("tiny")
  del config.eval["bleu_pairs"]  # An older config file.
  assert configuration.validate(config).eval.bleu_pairs == 0
  config = clm.get_config("tiny")
  config.eval.bleu_pairs = 4
  with pytest.raises(ConfigError) as error:
    configuration.validate(config)
  assert str(error.value) == ("config.eval.bleu_pairs: BLEU is available for experiment "
                              "seq2seq only; set it to 0")
  config = seq2seq.get_config("tiny")
  config.eval.bleu_pairs = -1
  with pytest.raises(ConfigError) as error:
    configuration.validate(config)
  assert str(error.value) == "config.eval.bleu_pairs: must be >= 0, got -1"


def test_temperature_zero_means_greedy_in_the_config_as_in_the_sampler():
  from transformer_jax.decoding import samplers  # pylint: disable=import-outside-toplevel
  decode = configuration.validate(_with(clm.get_config("tiny"), temperature=0.0)).decode
  assert samplers.for_strategy(decode.strategy, decode.temperature) is samplers.greedy
  with pytest.raises(ConfigError) as error:
    configuration.validate(_with(clm.get_config("tiny"), temperature=-1.0))
  assert str(error.value) == "config.decode.temperature: must be >= 0 (0 is greedy), got -1.0"
