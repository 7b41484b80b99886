"""--mode=sample with decode.strategy=beam for the decoder-only family: the n-best
continuations with translation's GNMT scores (the search itself: test_beam_search.py,
including a hand-built case where the beam beats greedy)."""

import re

import pytest

from conftest import tiny_config
from transformer_jax.tasks import clm as clm_experiment
from transformer_jax.run import weights

PROMPT = "ROMEO:"


def _task(tiny_run, **decode):
  overrides = {f"decode.{key}": value for key, value in decode.items()}
  return clm_experiment.build_task(tiny_config(**{"decode.max_new_tokens": 12, **overrides}),
                                   str(tiny_run), need_data=False)


@pytest.fixture(scope="module")
def params(tiny_run):
  return weights.inference_params(_task(tiny_run))


def test_a_beam_of_one_is_greedy(tiny_run, params):
  greedy = clm_experiment.continuer(_task(tiny_run, strategy="greedy")).continue_batch(
      params, [PROMPT, "JULIET:"])
  beam = clm_experiment.continuer(_task(tiny_run, strategy="beam", beam_size=1)).n_best(
      params, [PROMPT, "JULIET:"])
  assert [hypotheses[0][0] for hypotheses in beam] == greedy
  assert all(len(hypotheses) == 1 for hypotheses in beam)


def test_the_n_best_are_ranked_and_the_best_is_at_least_greedy(tiny_run, params):
  task = _task(tiny_run, strategy="beam", beam_size=4, length_penalty=0.0)
  (hypotheses,) = clm_experiment.continuer(task).n_best(params, [PROMPT])
  (greedy,) = clm_experiment.continuer(
      _task(tiny_run, strategy="beam", beam_size=1, length_penalty=0.0)).n_best(params, [PROMPT])
  scores = [score for _, score, _ in hypotheses]
  assert len(hypotheses) == 4 and scores == sorted(scores, reverse=True)
  assert len({text for text, _, _ in hypotheses}) == 4
  assert all(score == log_prob for _, score, log_prob in hypotheses)  # alpha 0: lp = 1.
  assert hypotheses[0][2] >= greedy[0][2]  # A wider beam finds at least greedy's log P.


def test_sample_mode_prints_the_n_best_with_scores(tiny_run, tmp_path, capsys):
  workdir = tmp_path / "run"
  workdir.mkdir()
  for name in ("checkpoints", "vocabulary.json"):
    (workdir / name).symlink_to(tiny_run / name)
  text = clm_experiment.sample(tiny_config(**{"decode.strategy": "beam",
                                              "decode.max_new_tokens": 8}), str(workdir),
                               PROMPT)
  headers = re.findall(r"===== beam (\d) of 4: score (-?[\d.]+) \(log P (-?[\d.]+)\) =====",
                       text)
  assert [h[0] for h in headers] == ["1", "2", "3", "4"]
  assert text.count(f"\n{PROMPT}") == 4 and text in capsys.readouterr().out
