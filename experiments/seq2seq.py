"""Translation with an encoder-decoder Transformer on any parallel corpus (tsv or aligned).

Default: English→Chinese on the shipped Tatoeba pairs, split by source sentence.
Modes: `train` (resumes, evaluates), `eval` (eval_loss, eval_perplexity,
eval_token_accuracy of the latest checkpoint, teacher-forced on validation pairs;
then eval_bleu: the test split decoded with decode.strategy, hypotheses written to
translations_test_step<N>.txt) and `translate` (--input sentences, one a line, or
- for stdin; one translation a line to --output or stdout) and `attention` (translates
--input=TEXT and draws self- and cross-attention maps to --output=DIR) and `export`
(--format=native). With eval.bleu_pairs > 0
every evaluation, in training and in `eval`, also reports eval_validation_bleu: that
many validation pairs decoded with decode.strategy.
tokens/s counts source and target positions.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Optional, Sequence, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from experiments import task as task_lib
from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data import catalog, line_files, translation_data
from transformer_jax.decoding.translator import Translator
from transformer_jax.errors import UserError
from transformer_jax.evaluation import bleu
from transformer_jax.inspection import attention_plots
from transformer_jax.models.encoder_decoder import EncoderDecoder
from transformer_jax.objectives.seq2seq import Seq2SeqObjective
from transformer_jax.training.loop import MoreMetrics

TRANSLATIONS_FILE = "translations_test_step{step}.txt"
PACKINGS = ("none", "documents")  # The row layouts translation_data builds.
VALIDATION_BLEU = "eval_validation_bleu"
T = TypeVar("T")


def validate(cfg: ExperimentConfig) -> None:
  """The rules of this experiment's own (see `configuration.validate`)."""
  task_lib.check_packing(cfg, PACKINGS)
  catalog.check_kind(cfg, ())  # No catalogued dataset is a parallel corpus.


def build_task(cfg: ExperimentConfig, workdir: str, need_data: bool = True) -> task_lib.Task:
  length = cfg.model.max_length
  return task_lib.build(
      cfg, workdir, data=translation_data.build(cfg, workdir) if need_data else None,
      make_model=EncoderDecoder,
      make_objective=lambda model: Seq2SeqObjective(model, cfg.train.label_smoothing),
      example_lengths=(length, length))


def make_translator(task: task_lib.Task) -> Translator:
  model, _ = task_lib.decoding_model(task, None)
  return Translator(model, task.tokenizer, task.cfg.decode, batch_size=task.cfg.eval.batch_size,
                    context=lambda: task_lib.decoding_mesh(task),
                    prepare=lambda params: task_lib.decoding_model(task, params)[1])


def _one_line(text: str) -> str:
  return " ".join(text.splitlines())


def evenly_spaced(items: Sequence[T], count: int) -> list[T]:
  """At most `count` items spread over the whole list (its order is the split's, so a
  prefix could favour one part of the corpus), first and last included."""
  if count >= len(items):
    return list(items)
  if count == 1:
    return [items[0]]
  return [items[i * (len(items) - 1) // (count - 1)] for i in range(count)]


def translated_bleu(translator: Translator, params,
                    pairs: Sequence[tuple[str, str]]) -> tuple[float, list[str]]:
  """(BLEU, the hypotheses, one line each) of translating each pair's source."""
  hypotheses = [_one_line(h) for h in translator.translate(params, [s for s, _ in pairs])]
  return bleu.corpus_bleu(hypotheses, [target for _, target in pairs]), hypotheses


def validation_bleu(task: task_lib.Task, translator: Translator) -> Optional[MoreMetrics]:
  """params -> {eval_validation_bleu}: eval.bleu_pairs validation pairs translated with
  decode.strategy by one compiled translator; None when eval.bleu_pairs is 0."""
  pairs = evenly_spaced(task.data.validation_pairs, task.cfg.eval.bleu_pairs)
  if not pairs:
    return None

  def more_metrics(params) -> dict[str, float]:
    start = time.time()
    score, hypotheses = translated_bleu(translator, params, pairs)
    logging.info("validation BLEU %.2f on %d pairs (decode.strategy=%s) in %.1f s; e.g. "
                 "%r -> %r (reference %r)", score, len(pairs), task.cfg.decode.strategy,
                 time.time() - start, pairs[0][0], hypotheses[0], pairs[0][1])
    return {VALIDATION_BLEU: score}

  return more_metrics


def evaluate(cfg: ExperimentConfig, workdir: str) -> dict[str, float]:
  """Teacher-forced metrics, then BLEU of decode.strategy's translations of the test split."""
  task = build_task(cfg, workdir)
  params, step = task_lib.inference_state(task)
  translator = make_translator(task)  # One compilation for validation and test.
  metrics = task_lib.evaluate_params(task, params, task.data.eval_batches(),
                                     validation_bleu(task, translator))
  pairs = task.data.test_pairs
  if pairs:
    start, cut_before = time.time(), translator.num_cut
    metrics["eval_bleu"], hypotheses = translated_bleu(translator, params, pairs)
    line_files.write_lines(hypotheses,
                           os.path.join(workdir, TRANSLATIONS_FILE.format(step=step)))
    logging.info("test BLEU %.2f (tokenize %s, decode.strategy=%s) on %d pairs in %.1f s; "
                 "%d sources cut to model.max_length", metrics["eval_bleu"],
                 bleu.tokenization_for([target for _, target in pairs]), cfg.decode.strategy, len(pairs),
                 time.time() - start, translator.num_cut - cut_before)
  else:
    logging.warning("no test pairs (data.test_fraction=%s): no eval_bleu",
                    cfg.data.test_fraction)
  task_lib.record_evaluation(workdir, step, metrics)
  return metrics


def translate(cfg: ExperimentConfig, workdir: str, inputs: task_lib.ModeInputs) -> list[str]:
  if inputs.input_path is None:
    raise UserError("--mode=translate needs --input=FILE (one sentence a line, - for stdin)")
  sentences = line_files.read_lines(inputs.input_path, "--input")
  task = build_task(cfg, workdir, need_data=False)
  params = task_lib.inference_params(task)
  translator = make_translator(task)
  translations = ([_one_line(t) for t in translator.translate(params, sentences)]
                  if sentences else [])
  if translator.num_cut:
    logging.warning("cut %d of %d sentences to model.max_length=%d tokens", translator.num_cut,
                    len(sentences), cfg.model.max_length)
  line_files.write_lines(translations, inputs.output_path)
  return translations


def attention(cfg: ExperimentConfig, workdir: str, inputs: task_lib.ModeInputs) -> list[str]:
  """--mode=attention: translates --input with decode.strategy, then draws the encoder's
  self-attention over the source, the decoder's over the translation and the
  cross-attention between them (rows: each translation token as the decoder predicts it,
  after <bos> and the tokens before it; the last row predicts <eos>). Writes
  encoder_self_attention, decoder_self_attention and cross_attention .npy [L, H, T, S]
  and one PNG per layer of each to --output."""
  cfg, text, directory = task_lib.attention_inputs(cfg, inputs)
  task = build_task(cfg, workdir, need_data=False)
  params = task_lib.inference_params(task)
  translator = make_translator(task)
  translation = translator.translate(params, [text])[0]
  print(translation)
  tokenizer, length = task.tokenizer, cfg.model.max_length
  source = list(tokenizer.encode(text))[:length - 1] + [translator.eos]
  target = list(tokenizer.encode(translation))[:length - 1]
  inputs_ids = jnp.asarray([[translator.bos] + target])
  predicted = target + [translator.eos]

  @jax.jit
  def weights(params, source, inputs_ids):
    apply = functools.partial(task.model.apply, {"params": params}, deterministic=True,
                              return_attention_weights=True)
    encoded = apply(source, method="encode")
    decoded = apply(encoded.hidden_states, inputs_ids, method="decode")
    return (encoded.attention_weights, decoded.attention_weights,
            decoded.cross_attention_weights)

  encoder, decoder, cross = (np.asarray(w)[:, 0] for w in weights(
      params, jnp.asarray([source]), inputs_ids))
  labels = functools.partial(attention_plots.token_labels, tokenizer)
  source_labels, input_labels, predicted_labels = (labels(source), labels([translator.bos] + target),
                                                   labels(predicted))
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


def run(cfg: ExperimentConfig, workdir: str, mode: str, inputs: task_lib.ModeInputs) -> None:
  if mode == "train":
    task = build_task(cfg, workdir)
    task_lib.train(task, workdir, 2 * cfg.train.batch_size * cfg.model.max_length,
                   more_metrics=validation_bleu(task, make_translator(task)))
  elif mode == "eval":
    evaluate(cfg, workdir)
  elif mode == "translate":
    translate(cfg, workdir, inputs)
  elif mode == "attention":
    attention(cfg, workdir, inputs)
  elif mode == "export":  # --format=native only: no Hugging Face family here.
    task_lib.export(build_task(cfg, workdir, need_data=False), inputs)
  else:
    raise UserError(f"--mode={mode} is not available for experiment seq2seq: "
                    "use train, eval, translate, attention or export")
