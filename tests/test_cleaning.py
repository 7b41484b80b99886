"""Text cleaning: each step on its own, their order, and config validation."""

import pytest

from transformer_jax.data.corpora.cleaning import CleaningConfig, clean

NOISY = "  a  \r\n\x00\u200b\ufb01 e\u0301\u00a0\t \n\n\n\n\nb"


def test_defaults_change_nothing():
  assert clean(NOISY, CleaningConfig()) == NOISY


def test_nfkc_and_nfc():
  assert clean("\ufb01", CleaningConfig(unicode_normalization="NFKC")) == "fi"
  assert clean("\ufb01", CleaningConfig(unicode_normalization="NFC")) == "\ufb01"
  assert clean("e\u0301", CleaningConfig(unicode_normalization="NFC")) == "\u00e9"
  assert clean("\u00e9", CleaningConfig(unicode_normalization="NFKC")) == "\u00e9"


def test_control_characters_go_but_newline_and_tab_stay():
  config = CleaningConfig(remove_control_characters=True)
  assert clean("a\x00b\u200bc\td\ne\x7f\ufeff", config) == "abc\td\ne"
  assert clean("a\r\nb\rc", config) == "a\nb\nc"


def test_control_removal_runs_before_normalization():
  # The zero-width space would block composing e + U+0301 if it were still there.
  config = CleaningConfig("NFC", remove_control_characters=True)
  assert clean("e\u200b\u0301", config) == "\u00e9"


@pytest.mark.parametrize("text, expected", [
    ("a   b\t\tc  \n", "a b\t\tc\n"),  # Runs of spaces collapse; tabs stay.
    ("    x  =  1\n\tif  y:\n", "    x = 1\n\tif y:\n"),  # Indentation stays.
    ("a \t \nb  \r\nc", "a\nb\nc"),  # Trailing spaces and tabs go; \r\n becomes \n.
    ("a\n\n\nb", "a\n\n\nb"),  # 2 blank lines stay.
    ("a\n\n\n\n\n\nb", "a\n\n\nb"),  # 5 blank lines become 2.
    ("a\n  \n \n\t\nb", "a\n\n\nb"),  # 3 whitespace-only lines are blank lines.
    ("\n\n\n\nx\n\n\n\n\n", "\n\nx\n\n\n"),  # At the start and the end too.
])
def test_whitespace_normalization(text, expected):
  assert clean(text, CleaningConfig(normalize_whitespace=True)) == expected


def test_all_steps_together():
  config = CleaningConfig("NFKC", remove_control_characters=True, normalize_whitespace=True)
  # NFKC turns U+00A0 into a space before whitespace runs collapse.
  assert clean(NOISY, config) == "  a\nfi \u00e9\n\n\nb"


def test_config_values_are_validated():
  with pytest.raises(ValueError, match=r"data.unicode_normalization must be one of none, NFC, "
                                       r"NFKC, got 'nfc'"):
    CleaningConfig("nfc")
  with pytest.raises(ValueError, match="data.normalize_whitespace must be True or False"):
    CleaningConfig(normalize_whitespace="yes")
