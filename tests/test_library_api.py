"""transformer_jax.load: every experiment's runs as Python objects that equal the modes.

Greedy `generate` is what `--mode=sample` prints, `score` is the evaluation loss of the
same tokens, `translate` and `classify` are what `--mode=translate` and `--mode=predict`
write, a Hugging Face folder loads to its recorded logits, and a second call of the same
shapes compiles nothing. The runs are the session's tiny ones (conftest.py).
"""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import transformer_jax as tj
from conftest import SHARED_DATA, copy_workdir, run_launch, tiny_config
from transformer_jax import tasks
from transformer_jax.errors import UserError
from transformer_jax.evaluation import log_likelihood
from transformer_jax.run.modes import ModeInputs

TINY = "--config=configs/clm.py:tiny"
FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
GPT2, BERT = FIXTURES / "hf_gpt2_tiny", FIXTURES / "hf_bert_tiny"


# A jit that finds no compiled function of its own traces (and then compiles, or reads
# the persistent compilation cache): both are counted.
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                  "/jax/core/compile/backend_compile_duration")


def compilations(run) -> int:
  """How many traces and XLA compilations `run()` starts."""
  count = 0

  def listener(event, duration, **kwargs):  # pylint: disable=unused-argument
    nonlocal count
    count += event in COMPILE_EVENTS

  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    run()
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  return count


@pytest.fixture(scope="module")
def lm(tiny_run):
  return tj.load(str(tiny_run))


def test_the_parts_are_there(lm, tiny_run):
  assert lm.experiment == "clm" and lm.step == 20
  assert lm.config.model.vocab_size == lm.tokenizer.vocab_size == 65
  assert lm.params["block_0"]["attention"]["query"]["kernel"].shape == (32, 2, 16)  # D, H, K
  assert "clm, step 20" in repr(lm)
  assert tj.load(f"{tiny_run}@10").step == 10


def test_greedy_generate_is_what_sample_prints(lm, tiny_run, tmp_path):
  workdir = copy_workdir(tiny_run, tmp_path / "w")
  prompts = ["ROMEO:", "JULIET: O"]
  (tmp_path / "prompts.txt").write_text("\n".join(prompts) + "\n", encoding="utf-8")
  flags = (TINY, f"--workdir={workdir}", "--mode=sample", "--config.decode.strategy=greedy",
           "--config.decode.max_new_tokens=12")
  batch = run_launch(*flags, f"--prompts_file={tmp_path / 'prompts.txt'}")
  single = run_launch(*flags, "--prompt=ROMEO:")
  assert batch.returncode == 0 and single.returncode == 0, batch.stderr[-2000:]
  continuations = lm.generate(prompts, strategy="greedy", max_new_tokens=12)
  assert batch.stdout == "\n".join(
      f"===== prompt {number} =====\n{prompt}{continuation}"
      for number, (prompt, continuation) in enumerate(zip(prompts, continuations), 1)) + "\n"
  assert single.stdout == "ROMEO:" + continuations[0] + "\n"
  assert all(len(c) == 12 for c in continuations)  # A character vocabulary has no EOS.


def test_a_second_call_of_the_same_shapes_compiles_nothing(lm):
  first = compilations(lambda: lm.generate(["ROMEO:", "KING:"], strategy="greedy",
                                           max_new_tokens=8))
  again = compilations(lambda: lm.generate(["JULIET", "QUEEN:"], strategy="greedy",
                                           max_new_tokens=8))
  assert first >= 1 and again == 0
  scored = compilations(lambda: lm.score(["To be, or not"]))
  assert compilations(lambda: lm.score(["Not to be, or"])) == 0 and scored >= 1


def _evaluation(lm, inputs, targets) -> tuple[float, int]:
  """(total NLL, tokens) of the rows as --mode=eval computes them."""
  metrics = lm.task.trainer.evaluate(lm.params, [{"inputs": np.asarray(inputs, np.int32),
                                                  "targets": np.asarray(targets, np.int32)}])
  return metrics["eval_loss"] * metrics["eval_tokens"], metrics["eval_tokens"]


def test_score_is_the_evaluation_loss_of_the_same_tokens(lm):
  text = "To be, or not to be, that is"  # 28 characters: within the 32 of context.
  (score,) = lm.score([text])
  ids = lm.tokenizer.encode(text)  # No EOS in a character vocabulary: the first is context.
  total, count = _evaluation(lm, [ids[:-1]], [ids[1:]])
  assert count == len(score.tokens) == len(text) - 1 == len(score.token_log_probs)
  assert -score.log_prob == pytest.approx(total, rel=1e-5)
  assert np.array_equal(score.tokens, ids[1:])


def test_a_text_longer_than_the_context_is_scored_in_disjoint_windows(lm):
  text = "First Citizen:\nBefore we proceed any further, hear me speak."  # 60 > 32.
  (score,) = lm.score([text])
  windows = log_likelihood.rolling_windows(lm.tokenizer.encode(text), None, 32)
  assert [len(w.continuation) for w in windows] == [32, 27]
  expected = 0.0
  for window in windows:  # The plain forward pass over each window's last 33 tokens.
    row = list(window.context + window.continuation)[-33:]
    logits = lm.model.apply({"params": lm.params}, jnp.asarray([row[:-1]]),
                            deterministic=True).logits[0]
    log_probs = np.asarray(jax.nn.log_softmax(logits))[np.arange(len(row) - 1), row[1:]]
    expected += float(np.sum(log_probs[-len(window.continuation):]))
  assert score.log_prob == pytest.approx(expected, rel=1e-5)
  assert len(score.tokens) == len(text) - 1


def test_a_continuation_is_scored_given_its_context(lm):
  (whole,) = lm.score(["A: yes"])
  (given,) = lm.score(["A:"], continuations=[" yes"])
  assert given.tokens.tolist() == lm.tokenizer.encode(" yes").tolist()
  assert given.log_prob == pytest.approx(float(np.sum(whole.token_log_probs[-4:])), rel=1e-5)
  # The context's trailing space moves to the continuation, as the harness encodes it.
  (moved,) = lm.score(["A: "], continuations=["yes"])
  assert moved.log_prob == pytest.approx(given.log_prob, rel=1e-6)


def test_hidden_states_are_the_models_own(lm):
  states = lm.hidden_states(["ROMEO:", "To be"], layers=True)
  assert states.states.shape == (2, 16, 32) and states.lengths.tolist() == [6, 5]
  assert states.layers.shape == (2, 2, 16, 32)
  out = lm.model.apply({"params": lm.params}, jnp.asarray([lm.tokenizer.encode("ROMEO:")]),
                       deterministic=True)
  np.testing.assert_allclose(states.states[0, :6], np.asarray(out.hidden_states)[0], atol=1e-5)
  assert not states.states[1, 5:].any()  # Zeros beyond a text.


def test_mlm_hidden_states_and_what_it_does_not_do(mlm_base):
  bert = tj.load(str(mlm_base))
  states = bert.hidden_states(["To be, or not to be"])
  assert states.states.shape[-1] == 32 and states.tokens[0, 0] == bert.tokenizer.token_id("<cls>")
  with pytest.raises(UserError, match="generate is for experiments clm, sft; this is a mlm model"):
    bert.generate(["To be"])


def test_translate_is_what_translate_writes_and_score_is_teacher_forced(seq2seq_run, tmp_path,
                                                                      capsys):
  sentences = ["I am a student.", "Where is the station?"]
  (tmp_path / "in.txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
  cfg = tiny_config("seq2seq", **{"decode.strategy": "greedy"})  # --mode=translate, in-process.
  tasks.run(cfg, str(seq2seq_run), "translate", ModeInputs(input_path=str(tmp_path / "in.txt")))
  translator = tj.load(str(seq2seq_run))
  assert translator.translate(sentences, strategy="greedy") == capsys.readouterr().out.splitlines()
  (score,) = translator.score(["I am a student."], continuations=["我是学生。"])
  tokenizer, task = translator.tokenizer, translator.task
  source = list(tokenizer.encode("I am a student.")) + [tokenizer.token_id("<eos>")]
  target = list(tokenizer.encode("我是学生。"))
  row = lambda ids: np.asarray([ids], np.int32)
  batch = {"source": row(source), "source_segment_ids": row([1] * len(source)),
           "inputs": row([tokenizer.token_id("<bos>")] + target),
           "targets": row(target + [tokenizer.token_id("<eos>")]),
           "segment_ids": row([1] * (len(target) + 1)),
           "weights": np.ones((1, len(target) + 1), np.float32)}
  metrics = task.trainer.evaluate(translator.params, [batch])
  assert len(score.tokens) == metrics["eval_tokens"] == len(target) + 1
  assert -score.log_prob == pytest.approx(metrics["eval_loss"] * metrics["eval_tokens"],
                                          rel=1e-5)


@pytest.mark.parametrize("run", ["classify_run", "classify_lora_run"])
def test_classify_is_what_predict_prints(run, request, tmp_path, capsys):
  workdir = request.getfixturevalue(run)
  texts = ["A wonderful film.", "The battery died in a day."]
  (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
  base = json.loads((workdir / "config.json").read_text())["train"]["init_from"]
  overrides = {"finetune.method": "lora", "train.init_from": base} if base else {}
  cfg = tiny_config("classify", **{"data.data_dir": str(SHARED_DATA), **overrides})
  tasks.run(cfg, str(workdir), "predict", ModeInputs(input_path=str(tmp_path / "in.txt")))
  printed = capsys.readouterr().out.splitlines()  # What --mode=predict prints.
  classifier = tj.load(str(workdir))
  assert classifier.labels == ("0", "1")
  predicted = classifier.classify(texts)
  assert [f"{label}\t{probabilities[label]:.4f}" for label, probabilities in predicted] == printed
  assert all(sum(p.values()) == pytest.approx(1.0, abs=1e-5) for _, p in predicted)


@pytest.mark.slow  # The session's SFT run (conftest.sft_run) serves the slow tier only.
def test_sft_generate_is_what_sample_prints(sft_run, capsys):
  cfg = tiny_config("sft", **{"decode.strategy": "greedy"})  # --mode=sample, in-process.
  tasks.run(cfg, str(sft_run), "sample", ModeInputs(prompt="I am a student."))
  printed = capsys.readouterr().out
  tuned = tj.load(str(sft_run))
  assert tuned.generate(["I am a student."], strategy="greedy") == [printed[:-1]]
  (score,) = tuned.score(["I am a student."], continuations=["我是学生。"])
  assert score.tokens[-1] == tuned.tokenizer.token_id("<eos>") and score.log_prob < 0


@pytest.mark.slow  # test_hf_import.py checks the same recorded logits in the default tier.
def test_hugging_face_folders_load_to_their_recorded_logits():
  gpt2 = tj.load(f"hf:{GPT2}")
  inputs = json.loads((GPT2 / "inputs.json").read_text())
  assert gpt2.config.model.activation == "gelu_tanh" and gpt2.config.model.use_bias
  logits = gpt2.model.apply({"params": gpt2.params}, jnp.asarray([inputs["input_ids"]]),
                            deterministic=True).logits
  assert np.abs(np.asarray(logits) - np.load(GPT2 / "logits.npy")).max() <= 1e-4
  bert = tj.load(str(BERT))  # The hf: prefix is optional for a folder with a model_type.
  inputs = json.loads((BERT / "inputs.json").read_text())
  out = bert.model.apply({"params": bert.params}, jnp.asarray([inputs["input_ids"]]),
                         token_types=jnp.asarray([inputs["token_type_ids"]]), deterministic=True)
  assert np.abs(np.asarray(out.logits) - np.load(BERT / "logits.npy")).max() <= 1e-4


def test_overrides_are_validated_config_fields(tiny_run):
  assert tj.load(str(tiny_run), model__quantize="int8").config.model.quantize == "int8"
  with pytest.raises(UserError, match=r"^config\.model\.nonsense: unknown config field$"):
    tj.load(str(tiny_run), **{"model.nonsense": 1})
  with pytest.raises(UserError, match=r"^config\.decode\.temperature: must be >= 0"):
    tj.load(str(tiny_run)).generate(["A"], temperature=-1.0)


def test_what_cannot_load_is_one_line(tmp_path, classify_lora_run):
  with pytest.raises(UserError, match=f"^{tmp_path / 'nothing'} does not exist"):
    tj.load(str(tmp_path / "nothing"))
  (tmp_path / "other").mkdir()
  (tmp_path / "other" / "notes.txt").write_text("not a model")
  with pytest.raises(UserError, match="is neither a workdir"):
    tj.load(str(tmp_path / "other"))
  moved = copy_workdir(classify_lora_run, tmp_path / "orphan")
  config = json.loads((moved / "config.json").read_text())
  config["train"]["init_from"] = str(tmp_path / "gone")
  (moved / "config.json").write_text(json.dumps(config))
  with pytest.raises(UserError) as error:
    tj.load(str(moved))
  assert str(error.value) == (f"{moved} adapts the base train.init_from={tmp_path / 'gone'}, "
                              "which is not there (run from the folder it was trained in, or "
                              "pass train.init_from=DIR)")
  assert "\n" not in str(error.value)
