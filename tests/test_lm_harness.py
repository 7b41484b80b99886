"""lm-evaluation-harness on this project's models (transformer_jax/tasks/lm_harness.py).

Offline: local tasks (the shipped Tiny Shakespeare cloze, and tasks the tests write),
the session's tiny GPT. Each request type equals the project's own computation;
`--mode=lm_eval` writes the harness's results. Parity with the harness's own Hugging Face
model needs torch and transformers (`.[hf]`) and is skipped without them.
"""

import json
import pathlib

import numpy as np
import pytest

import transformer_jax as tj
from conftest import REPO, copy_workdir, run_launch
from transformer_jax.data.batches import chunking
from transformer_jax.errors import UserError

lm_eval = pytest.importorskip("lm_eval", reason="lm-eval is the eval extra: pip install -e '.[eval]'")
from lm_eval.api.instance import Instance  # pylint: disable=wrong-import-position

from transformer_jax.tasks import lm_harness  # pylint: disable=wrong-import-position

TASKS = REPO / "experiments" / "lm_eval_tasks"
GPT2 = pathlib.Path(__file__).resolve().parent / "fixtures" / "hf_gpt2_tiny"


def _requests(kind: str, arguments) -> list:
  return [Instance(request_type=kind, doc={}, arguments=args, idx=i)
          for i, args in enumerate(arguments)]


@pytest.fixture(scope="module")
def harness(tiny_run):
  return lm_harness.HarnessModel(loaded=tj.load(str(tiny_run)))


def test_loglikelihood_is_the_sum_of_the_scores_log_probabilities(harness):
  pairs = [("ROMEO:\nWhat", " light"), ("To be, or not to ", "be"), ("", "KING:")]
  answers = harness.loglikelihood(_requests("loglikelihood", pairs))
  for (context, continuation), (log_prob, is_greedy) in zip(pairs, answers):
    (score,) = harness.loaded.score([context or continuation[:1]],
                                    continuations=[continuation if context else continuation[1:]])
    assert log_prob == pytest.approx(float(np.sum(score.token_log_probs)), rel=1e-6)
    assert is_greedy == score.is_greedy


def test_a_rolling_log_likelihood_is_the_sliding_window_evaluation(harness):
  """With windows the text fills (65 characters: 64 predicted in two windows of 32), the
  harness's windows are eval.stride=32's sliding windows: the same rows, the same sum."""
  text = ("First Citizen:\nBefore we proceed any further, hear me speak. All:")[:65]
  (rolling,) = harness.loglikelihood_rolling(_requests("loglikelihood_rolling", [(text,)]))
  rows = chunking.sliding_windows(harness.loaded.tokenizer.encode(text), 32, 32)
  metrics = harness.loaded.task.trainer.evaluate(harness.loaded.params, [rows])
  assert metrics["eval_tokens"] == 64
  assert -rolling == pytest.approx(metrics["eval_loss"] * metrics["eval_tokens"], rel=1e-5)


def test_generate_until_stops_at_the_until_string(harness):
  greedy = harness.loaded.generate(["ROMEO:\n"], strategy="greedy", max_new_tokens=20)[0]
  stop = greedy[5:7]  # Two characters the greedy continuation reaches.
  (cut,) = harness.generate_until(_requests("generate_until", [
      ("ROMEO:\n", {"until": [stop], "max_gen_toks": 20, "do_sample": False})]))
  assert cut == greedy[:greedy.index(stop)] and stop not in cut
  (whole,) = harness.generate_until(_requests("generate_until", [
      ("ROMEO:\n", {"until": ["never there"], "max_gen_toks": 20})]))
  assert whole == greedy


@pytest.mark.slow  # A long end-to-end launch.py run: see setup.cfg's markers.
def test_lm_eval_mode_writes_the_results_of_a_local_task(tiny_run, tmp_path):
  workdir = copy_workdir(tiny_run, tmp_path / "w")
  output = tmp_path / "results.json"
  result = run_launch("--config=configs/clm.py:tiny", f"--workdir={workdir}", "--mode=lm_eval",
                      "--tasks=shakespeare_cloze", f"--include_path={TASKS}", "--limit=16",
                      f"--output={output}")
  assert result.returncode == 0, result.stderr[-3000:]
  results = json.loads(output.read_text())
  scores = results["results"]["shakespeare_cloze"]
  assert 0 <= scores["acc,none"] <= 1 and results["config"]["limit"] == 16
  assert "shakespeare_cloze" in result.stdout  # The harness's table.


def test_simple_evaluate_runs_a_generation_task_the_test_writes(harness, tmp_path):
  data = tmp_path / "lines.jsonl"
  data.write_text("".join(json.dumps({"prompt": p, "answer": "x"}) + "\n"
                          for p in ("ROMEO:\n", "JULIET:\n", "KING:\n")), encoding="utf-8")
  (tmp_path / "lines.yaml").write_text(f"""task: lines_until
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 12
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
""", encoding="utf-8")
  results = lm_eval.simple_evaluate(model=harness, tasks=["lines_until"],
                                    task_manager=lm_harness.task_manager(str(tmp_path),
                                                                         ["lines_until"]),
                                    log_samples=True)
  responses = [sample["resps"][0][0] for sample in results["samples"]["lines_until"]]
  assert len(responses) == 3 and all("\n" not in r for r in responses)
  assert results["results"]["lines_until"]["exact_match,none"] == 0.0


def test_local_tasks_are_indexed_alone():
  """--include_path's tasks alone when they are all that --tasks names: lm-eval's own
  ~15k take 10-25 s to index on 2 cores."""
  assert lm_harness.task_manager(str(TASKS), ["shakespeare_cloze"]).all_tasks == [
      "shakespeare_cloze"]


@pytest.mark.slow  # Indexes lm-eval's ~15k tasks: 10-25 s.
def test_a_name_the_local_tasks_lack_brings_the_harness_own_in():
  both = lm_harness.task_manager(str(TASKS), ["shakespeare_cloze", "lambada_openai"]).all_tasks
  assert {"shakespeare_cloze", "lambada_openai"} <= set(both) and len(both) > 1000


def test_the_model_is_registered_beside_the_harness_own():
  """Registering ours must not hide lm-eval's models (its lazy registry fills only while
  empty): --model hf still resolves once this module is imported."""
  registry = lm_eval.api.registry
  assert registry.get_model(lm_harness.NAME) is lm_harness.HarnessModel
  assert registry.get_model("dummy").__name__ == "DummyLM"


def test_what_the_harness_cannot_evaluate_is_one_line(mlm_base):
  with pytest.raises(UserError, match="evaluates language models"):
    lm_harness.HarnessModel(path=str(mlm_base))


def test_parity_with_the_harness_hugging_face_model():
  """The same tiny GPT-2, through this model (hf:DIR) and the harness's `hf` model: the
  same log-likelihoods (within 1e-4) and the same accuracy on the local cloze task."""
  pytest.importorskip("torch", reason="the parity needs torch and transformers: .[hf]")
  pytest.importorskip("transformers", reason="the parity needs torch and transformers: .[hf]")
  from lm_eval.tasks import TaskManager  # pylint: disable=import-outside-toplevel
  ours = lm_harness.HarnessModel(path=f"hf:{GPT2}")
  theirs = lm_eval.api.registry.get_model("hf")(pretrained=str(GPT2), device="cpu",
                                               batch_size=8)
  pairs = [("To be, or not to", " be"), ("The slings and", " arrows"), ("", "Hello world")]
  for (ours_lp, ours_greedy), (theirs_lp, theirs_greedy) in zip(
      ours.loglikelihood(_requests("loglikelihood", pairs)),
      theirs.loglikelihood(_requests("loglikelihood", pairs))):
    assert abs(ours_lp - theirs_lp) <= 1e-4 and ours_greedy == theirs_greedy
  manager = TaskManager(include_path=str(TASKS))
  accuracy = [lm_eval.simple_evaluate(model=model, tasks=["shakespeare_cloze"], limit=40,
                                      task_manager=manager)["results"]["shakespeare_cloze"]
              ["acc,none"] for model in (ours, theirs)]
  assert accuracy[0] == accuracy[1]
