"""The two tiers: the default one (README's test line) and `-m slow`, which CI runs too."""

import re
import subprocess
import sys

from conftest import REPO


def test_the_slow_marker_is_registered(pytestconfig):
  assert any(line.startswith("slow:") for line in pytestconfig.getini("markers"))
  assert "not slow" in " ".join(pytestconfig.getini("addopts"))


def test_the_default_tier_selects_at_least_four_fifths_of_the_tests():
  collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                              "-p", "no:cacheprovider", "tests"], cwd=REPO, capture_output=True,
                             text=True, check=False, timeout=300)
  match = re.search(r"(\d+)/(\d+) tests collected \((\d+) deselected\)", collected.stdout)
  assert match, collected.stdout[-2000:]
  selected, total, deselected = map(int, match.groups())
  assert selected + deselected == total and deselected > 0
  assert selected >= 0.8 * total, (selected, total)
