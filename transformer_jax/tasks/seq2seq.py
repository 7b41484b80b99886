"""Translation with an encoder-decoder Transformer on any parallel corpus (tsv or aligned).

Default: English→Chinese on the shipped Tatoeba pairs, split by source sentence.
Modes: `train` (resumes, evaluates), `eval` (eval_loss, eval_perplexity,
eval_token_accuracy, teacher-forced on validation pairs; then eval_bleu: the test split
decoded with decode.strategy, hypotheses written to translations_test_step<N>.txt),
`translate` (--input sentences, one a line, or - for stdin; one translation a line to
--output or stdout), `attention` (translates --input=TEXT and draws self- and
cross-attention maps to --output=DIR) and `export` (--format=native). With
eval.bleu_pairs > 0 every evaluation, in training and in `eval`, also reports
eval_validation_bleu: that many validation pairs decoded with decode.strategy.
tokens/s counts source and target positions.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data.tasks import translation_data
from transformer_jax.data.tokenizers import special_tokens
from transformer_jax.decoding.translator import Translator
from transformer_jax.errors import UserError
from transformer_jax.evaluation import bleu, log_likelihood, validation_bleu
from transformer_jax.inspection import attention_plots
from transformer_jax.models.encoder_decoder import EncoderDecoder
from transformer_jax.objectives.seq2seq import Seq2SeqObjective
from transformer_jax.run import evaluate as evaluate_lib
from transformer_jax.run import export, line_files, modes, task as task_lib, train as train_lib
from transformer_jax.run import weights

TRANSLATIONS_FILE = "translations_test_step{step}.txt"
MODES = ("train", "eval", "translate", "attention", "export")


def model_spec(cfg: ExperimentConfig) -> task_lib.ModelSpec:
  length = cfg.model.max_length
  return task_lib.ModelSpec(
      make_model=EncoderDecoder,
      make_objective=lambda model: Seq2SeqObjective(model, cfg.train.label_smoothing),
      example_lengths=(length, length))


def build_task(cfg: ExperimentConfig, workdir: Optional[str],
               need_data: bool = True) -> task_lib.Task:
  make_data = (lambda existing: translation_data.build(cfg, existing)) if need_data else None
  return task_lib.build(cfg, workdir, model_spec(cfg), make_data)


def make_translator(task: task_lib.Task, decode=None) -> Translator:
  """The task's translator (decode: another DecodeConfig than the task's)."""
  model, _ = task.decoding_model(None)
  return Translator(model, task.tokenizer, decode or task.cfg.decode,
                    batch_size=task.cfg.eval.batch_size, context=task.decoding_mesh,
                    prepare=lambda params: task.decoding_model(params)[1])


def validation_bleu_metric(task: task_lib.Task, translator: Translator):
  return validation_bleu.metric(task.data.validation_pairs, task.cfg.eval.bleu_pairs,
                                translator.translate, f"decode.strategy={task.cfg.decode.strategy}")


def evaluate(cfg: ExperimentConfig, workdir: str) -> dict[str, float]:
  """Teacher-forced metrics, then BLEU of decode.strategy's translations of the test split."""
  task = build_task(cfg, workdir)
  params, step = weights.inference_state(task)
  translator = make_translator(task)  # One compilation for validation and test.
  metrics = evaluate_lib.evaluate_params(task, params, task.data.eval_batches(),
                                         validation_bleu_metric(task, translator))
  pairs = task.data.test_pairs
  if pairs:
    start, cut_before = time.time(), translator.num_cut
    metrics["eval_bleu"], hypotheses = validation_bleu.decoded_bleu(translator.translate,
                                                                    params, pairs)
    line_files.write_lines(hypotheses,
                           os.path.join(workdir, TRANSLATIONS_FILE.format(step=step)))
    logging.info("test BLEU %.2f (tokenize %s, decode.strategy=%s) on %d pairs in %.1f s; "
                 "%d sources cut to model.max_length", metrics["eval_bleu"],
                 bleu.tokenization_for([target for _, target in pairs]), cfg.decode.strategy,
                 len(pairs), time.time() - start, translator.num_cut - cut_before)
  else:
    logging.warning("no test pairs (data.test_fraction=%s): no eval_bleu",
                    cfg.data.test_fraction)
  evaluate_lib.record_evaluation(workdir, step, metrics)
  return metrics


def translate(cfg: ExperimentConfig, workdir: str, inputs: modes.ModeInputs) -> list[str]:
  if inputs.input_path is None:
    raise UserError("--mode=translate needs --input=FILE (one sentence a line, - for stdin)")
  sentences = line_files.read_lines(inputs.input_path, "--input")
  task = build_task(cfg, workdir, need_data=False)
  params = weights.inference_params(task)
  translator = make_translator(task)
  translations = ([" ".join(t.splitlines()) for t in translator.translate(params, sentences)]
                  if sentences else [])
  if translator.num_cut:
    logging.warning("cut %d of %d sentences to model.max_length=%d tokens", translator.num_cut,
                    len(sentences), cfg.model.max_length)
  line_files.write_lines(translations, inputs.output_path)
  return translations


def attention(cfg: ExperimentConfig, workdir: str, inputs: modes.ModeInputs) -> list[str]:
  """--mode=attention: translates --input with decode.strategy, then draws the encoder's
  self-attention over the source, the decoder's over the translation and the
  cross-attention between them (rows: each translation token as the decoder predicts it,
  after <bos> and the tokens before it; the last row predicts <eos>). Writes
  encoder_self_attention, decoder_self_attention and cross_attention .npy [L, H, T, S]
  and one PNG per layer of each to --output."""
  cfg, text, directory = modes.attention_inputs(cfg, inputs)
  task = build_task(cfg, workdir, need_data=False)
  params = weights.inference_params(task)
  translator = make_translator(task)
  translation = translator.translate(params, [text])[0]
  print(translation)
  tokenizer, length = task.tokenizer, cfg.model.max_length
  source = list(tokenizer.encode(text))[:length - 1] + [translator.eos]
  target = list(tokenizer.encode(translation))[:length - 1]
  inputs_ids = jnp.asarray([[translator.bos] + target])
  predicted = target + [translator.eos]

  @jax.jit
  def attention_weights(params, source, inputs_ids):
    apply = functools.partial(task.model.apply, {"params": params}, deterministic=True,
                              return_attention_weights=True)
    encoded = apply(source, method="encode")
    decoded = apply(encoded.hidden_states, inputs_ids, method="decode")
    return (encoded.attention_weights, decoded.attention_weights,
            decoded.cross_attention_weights)

  encoder, decoder, cross = (np.asarray(w)[:, 0] for w in attention_weights(
      params, jnp.asarray([source]), inputs_ids))
  labels = functools.partial(attention_plots.token_labels, tokenizer)
  source_labels, input_labels, predicted_labels = (
      labels(source), labels([translator.bos] + target), labels(predicted))
  paths = attention_plots.write_maps(directory, "encoder_self_attention", encoder,
                                     source_labels, source_labels, "encoder self-attention")
  paths += attention_plots.write_maps(directory, "decoder_self_attention", decoder,
                                      predicted_labels, input_labels, "decoder self-attention",
                                      "rows: the token predicted, columns: the decoder's inputs")
  paths += attention_plots.write_maps(directory, "cross_attention", cross, predicted_labels,
                                      source_labels, "cross-attention",
                                      "rows: the token predicted, columns: the source")
  logging.info("translated %r -> %r; wrote %d attention maps and their .npy to %s", text,
               translation, len(paths), directory)
  return paths


def run(cfg: ExperimentConfig, workdir: str, mode: str, inputs: modes.ModeInputs) -> None:
  if mode == "train":
    task = build_task(cfg, workdir)
    train_lib.train(task, 2 * cfg.train.batch_size * cfg.model.max_length,
                    more_metrics=validation_bleu_metric(task, make_translator(task)))
  elif mode == "eval":
    evaluate(cfg, workdir)
  elif mode == "translate":
    translate(cfg, workdir, inputs)
  elif mode == "attention":
    attention(cfg, workdir, inputs)
  elif mode == "export":  # --format=native only: no Hugging Face family here.
    export.export(build_task(cfg, workdir, need_data=False), inputs)
  else:
    raise modes.unavailable(cfg.experiment, mode, MODES)


def target_scorer(task: task_lib.Task) -> Callable[[Any, list[str], list[str]],
                                                   list[log_likelihood.Result]]:
  """(params, sources, targets) -> log P(target <eos> | source) per pair, teacher-forced in
  batches of [eval.batch_size, model.max_length] (one compilation, kept by the closure);
  sources and targets longer than the context are cut (source: EOS kept)."""
  tokenizer, length = task.tokenizer, task.cfg.model.max_length
  batch_size = task.cfg.eval.batch_size
  pad, bos, eos = (tokenizer.token_id(token) for token in (special_tokens.PAD,
                                                          special_tokens.BOS,
                                                          special_tokens.EOS))

  @jax.jit
  def log_probs(params, source, source_segments, inputs, targets, segments):
    logits = task.model.apply({"params": params}, source, inputs, deterministic=True,
                              source_segment_ids=source_segments,
                              segment_ids=segments).logits.astype(jnp.float32)
    chosen = jnp.take_along_axis(jax.nn.log_softmax(logits), targets[..., None], axis=-1)
    return chosen[..., 0], jnp.argmax(logits, axis=-1) == targets

  def score(params, sources: list[str], targets: list[str]) -> list[log_likelihood.Result]:
    results = []
    for start in range(0, len(sources), batch_size):
      pairs = list(zip(sources, targets))[start:start + batch_size]
      arrays = {name: np.full((batch_size, length), pad, np.int32)
                for name in ("source", "inputs", "targets")}
      source_segments = np.zeros((batch_size, length), np.int32)
      segments = np.zeros((batch_size, length), np.int32)
      source_segments[:, 0] = segments[:, 0] = 1  # Filler rows: one token each.
      scored = []
      for row, (source, target) in enumerate(pairs):
        source_ids = [int(t) for t in tokenizer.encode(source)][:length - 1] + [eos]
        target_ids = [int(t) for t in tokenizer.encode(target)][:length - 1]
        arrays["source"][row, :len(source_ids)] = source_ids
        source_segments[row, :len(source_ids)] = 1
        arrays["inputs"][row, :len(target_ids) + 1] = [bos] + target_ids
        arrays["targets"][row, :len(target_ids) + 1] = target_ids + [eos]
        segments[row, :len(target_ids) + 1] = 1
        scored.append(len(target_ids) + 1)
      with task.decoding_mesh():
        values, greedy = log_probs(params, *(jnp.asarray(a) for a in (
            arrays["source"], source_segments, arrays["inputs"], arrays["targets"], segments)))
      values, greedy = np.asarray(values), np.asarray(greedy)
      for row, count in enumerate(scored):
        results.append(log_likelihood.Result(
            log_prob=float(np.sum(values[row, :count], dtype=np.float64)),
            is_greedy=bool(np.all(greedy[row, :count])),
            token_log_probs=values[row, :count].astype(np.float32),
            tokens=arrays["targets"][row, :count].copy()))
    return results

  return score
