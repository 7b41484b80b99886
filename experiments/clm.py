"""Causal LM task: a GPT on any `data.*` corpus (char or BPE, stream or packed documents).

Modes: `train` (resumes from the workdir's latest checkpoint, evaluates, then
samples), `eval` (validation loss and perplexity of the latest checkpoint),
`sample` (continues a prompt; decode.strategy=beam gives the n-best continuations
with their scores), `attention` (draws the attention weights over --input) and
`export` (the latest checkpoint as a Hugging Face GPT-2 folder, or the project's own).
On a named text dataset (`data.dataset=wikitext-2`), `eval` with `eval.stride` > 0
also scores the test split (`test_*` metrics) and, where the catalog says so,
reports word-level perplexity (`eval_word_perplexity`, `test_word_perplexity`:
exp(total NLL / words, one <eos> per line)).
"""

from __future__ import annotations

import functools
import math
import os
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from experiments import task as task_lib
from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.data import catalog, chunking, lm_data, row_batches, special_tokens
from transformer_jax.data.line_files import read_lines
from transformer_jax.decoding import generate, kv_decoding, model_steps, samplers
from transformer_jax.decoding.beam_search import BeamOptions
from transformer_jax.errors import DataError, UserError
from transformer_jax.inspection import attention_plots
from transformer_jax.models.decoder import Decoder
from transformer_jax.objectives.causal_lm import CausalLmObjective
from transformer_jax.training import distributed

SAMPLES_FILE = "samples.txt"
PACKINGS = ("stream", "documents")  # The row layouts lm_data builds.


def validate(cfg: ExperimentConfig) -> None:
  """The rules of this experiment's own (see `configuration.validate`)."""
  task_lib.check_packing(cfg, PACKINGS)
  task_lib.check_no_bleu(cfg)
  catalog.check_kind(cfg, (catalog.TEXT,))


def build_task(cfg: ExperimentConfig, workdir: str, need_data: bool) -> task_lib.Task:
  return task_lib.build(
      cfg, workdir, data=lm_data.build(cfg, workdir) if need_data else None, make_model=Decoder,
      make_objective=lambda model: CausalLmObjective(model, cfg.train.label_smoothing),
      example_lengths=(cfg.model.max_length,))


def sample_text(task: task_lib.Task, params, prompt: str) -> str:
  """Continues `prompt` with `decode.max_new_tokens` tokens, in one jit: KV-cached while the
  context fits model.max_length, then by the sliding window (no cache) beyond it."""
  d, length = task.cfg.decode, task.cfg.model.max_length
  prompt_ids = task.tokenizer.encode(prompt)
  if len(prompt_ids) == 0:
    raise DataError("the prompt is empty")
  size = max(len(prompt_ids) + d.max_new_tokens, length)
  buffer = np.zeros((1, size), np.int32)
  buffer[0, :len(prompt_ids)] = prompt_ids
  sampler = samplers.for_strategy(d.strategy, d.temperature, d.top_k, d.top_p)
  # The cache holds prompt + new tokens - 1 slots; a prompt longer than the context gets none.
  num_cached = min(d.max_new_tokens, max(length + 1 - len(prompt_ids), 0))
  model, params = task_lib.decoding_model(task, params)

  @jax.jit
  def run(params, buffer, key):
    cached_key, windowed_key = jax.random.split(key)
    if num_cached:
      prompt = buffer[:, :len(prompt_ids)]
      new_tokens, _ = model_steps.generate(
          model, params, prompt, jnp.full((1,), len(prompt_ids), jnp.int32),
          sampler=sampler, max_new_tokens=num_cached, key=cached_key)
      buffer = jax.lax.dynamic_update_slice(buffer, new_tokens, (0, len(prompt_ids)))
    apply_logits = lambda tokens: model.apply({"params": params}, tokens,
                                              deterministic=True).logits
    step_fn = generate.windowed_step_fn(apply_logits, length)
    return generate.generate(step_fn, sampler, buffer, len(prompt_ids) + num_cached,
                             d.max_new_tokens - num_cached, windowed_key)

  with task_lib.decoding_mesh(task):
    tokens = run(params, buffer, jax.random.key(d.seed))
  return task.tokenizer.decode(np.asarray(tokens)[0, :len(prompt_ids) + d.max_new_tokens])


def _stop_tokens(task: task_lib.Task) -> tuple[int, ...]:
  """EOS, where the tokenizer has one: it ends a continuation."""
  if special_tokens.EOS in getattr(task.tokenizer, "special_tokens", ()):
    return (task.tokenizer.token_id(special_tokens.EOS),)
  return ()


def _prompt_batch(task: task_lib.Task, prompts: list[str]):
  """(tokens [B, P] left-padded, lengths [B], new tokens that fit model.max_length)."""
  d, length = task.cfg.decode, task.cfg.model.max_length
  ids = [list(task.tokenizer.encode(prompt)) for prompt in prompts]
  for number, prompt_ids in enumerate(ids, start=1):
    if not prompt_ids:
      raise DataError("the prompt is empty" if len(ids) == 1 else
                      f"prompt {number} of --prompts_file is empty")
  bucket = max(len(prompt_ids) for prompt_ids in ids)
  max_new_tokens = min(d.max_new_tokens, length + 1 - bucket)
  if max_new_tokens < 1:
    raise DataError(f"the longest prompt has {bucket} tokens: no room for a new token "
                    f"within model.max_length={length}")
  tokens, lengths = kv_decoding.left_pad(ids, bucket)
  return tokens, lengths, max_new_tokens


def sample_prompts(task: task_lib.Task, params, prompts: list[str]) -> list[str]:
  """Continues every prompt at once, as one left-padded ragged batch (KV-cached): each
  continuation has up to decode.max_new_tokens tokens, fewer when the longest prompt
  leaves less room in model.max_length; EOS, where the tokenizer has one, ends a row."""
  d = task.cfg.decode
  tokens, lengths, max_new_tokens = _prompt_batch(task, prompts)
  stop_tokens = _stop_tokens(task)
  sampler = samplers.for_strategy(d.strategy, d.temperature, d.top_k, d.top_p)
  model, params = task_lib.decoding_model(task, params)
  run = jax.jit(functools.partial(model_steps.generate, model, sampler=sampler,
                                  max_new_tokens=max_new_tokens, stop_tokens=stop_tokens))
  with task_lib.decoding_mesh(task):
    new_tokens, new_lengths = run(params, jnp.asarray(tokens), jnp.asarray(lengths),
                                  key=jax.random.key(d.seed))
  new_tokens, new_lengths = np.asarray(new_tokens), np.asarray(new_lengths)
  return [task.tokenizer.decode([int(t) for t in row[:count] if int(t) not in stop_tokens])
          for row, count in zip(new_tokens, new_lengths)]


def beam_continuations(task: task_lib.Task, params,
                       prompts: list[str]) -> list[list[tuple[str, float, float]]]:
  """decode.strategy=beam: each prompt's decode.beam_size best continuations, best first,
  as (text, score, log P). Scores as in translation: log P / GNMT's length penalty
  (decode.length_penalty). One left-padded KV-cached batch, so a continuation stops at
  EOS (where the tokenizer has one) or within model.max_length."""
  d = task.cfg.decode
  tokens, lengths, max_new_tokens = _prompt_batch(task, prompts)
  if max_new_tokens < d.max_new_tokens:
    logging.warning("beam search continues within model.max_length=%d: %d new tokens, not "
                    "decode.max_new_tokens=%d", task.cfg.model.max_length, max_new_tokens,
                    d.max_new_tokens)
  stop_tokens = _stop_tokens(task)
  options = BeamOptions(beam_size=d.beam_size, alpha=d.length_penalty,
                        eos_token=stop_tokens[0] if stop_tokens else None)
  run = jax.jit(functools.partial(model_steps.beam_search, task.model, options=options,
                                  max_new_tokens=max_new_tokens))
  result = jax.device_get(run(params, jnp.asarray(tokens), jnp.asarray(lengths)))
  n_best = []
  for row in range(len(prompts)):
    hypotheses = []
    for beam in range(d.beam_size):
      if not np.isfinite(result.scores[row, beam]):
        continue  # Fewer hypotheses exist than beams (a tiny vocabulary).
      kept = [int(t) for t in result.tokens[row, beam, :result.lengths[row, beam]]
              if int(t) not in stop_tokens]
      hypotheses.append((task.tokenizer.decode(kept), float(result.scores[row, beam]),
                         float(result.log_probs[row, beam])))
    n_best.append(hypotheses)
  return n_best


def n_best_text(prompts: list[str], n_best: list[list[tuple[str, float, float]]],
                numbered: bool) -> str:
  """One block per hypothesis: a header with its rank and scores, then prompt + text."""
  blocks = []
  for number, (prompt, hypotheses) in enumerate(zip(prompts, n_best), start=1):
    for rank, (text, score, log_prob) in enumerate(hypotheses, start=1):
      where = f"prompt {number}, " if numbered else ""
      blocks.append(f"===== {where}beam {rank} of {len(hypotheses)}: score {score:.4f} "
                    f"(log P {log_prob:.4f}) =====\n{prompt}{text}")
  return "\n".join(blocks)


def continue_prompt(task: task_lib.Task, params, prompt: str) -> str:
  """The text `sample` and `train` record for one prompt: the n-best with beam search,
  else the prompt and its continuation."""
  if task.cfg.decode.strategy == "beam":
    return n_best_text([prompt], beam_continuations(task, params, [prompt]), numbered=False)
  return sample_text(task, params, prompt)


def _record_sample(workdir: str, step: int, text: str) -> None:
  if not distributed.is_main_process():
    return
  with open(os.path.join(workdir, SAMPLES_FILE), "a", encoding="utf-8") as f:
    f.write(f"===== step {step} =====\n{text}\n")
  print(text)


def train(cfg: ExperimentConfig, workdir: str) -> None:
  task = build_task(cfg, workdir, need_data=True)
  result = task_lib.train(task, workdir, cfg.train.batch_size * cfg.model.max_length)
  if result is not None and task.cfg.decode.max_new_tokens:
    _record_sample(workdir, int(result.state.step),
                   continue_prompt(task, result.state.params, task.cfg.decode.prompt))


def evaluate(cfg: ExperimentConfig, workdir: str) -> dict[str, float]:
  task = build_task(cfg, workdir, need_data=True)
  if not cfg.eval.stride:
    return task_lib.evaluate(task, workdir)
  # Every held-out token scored once, with up to max_length tokens of context.
  params, step = task_lib.inference_state(task)
  metrics = {**_sliding_window_metrics(task, params, task.data.validation_tokens),
             "eval_stride": cfg.eval.stride}
  if task.data.test_tokens is not None:
    test = _sliding_window_metrics(task, params, task.data.test_tokens)
    metrics.update({"test" + name.removeprefix("eval"): value for name, value in test.items()})
  if task.data.word_counts is not None:
    metrics.update(word_level_metrics(metrics, task.data.word_counts))
  task_lib.record_evaluation(workdir, step, metrics)
  return metrics


def _sliding_window_metrics(task: task_lib.Task, params, tokens: np.ndarray) -> dict:
  cfg = task.cfg
  windows = chunking.sliding_windows(tokens, cfg.model.max_length, cfg.eval.stride)
  return task_lib.evaluate_params(task, params, row_batches.batches_of_rows(
      windows, cfg.eval.batch_size))


def word_level_metrics(metrics: dict, word_counts: dict[str, int]) -> dict[str, float]:
  """{prefix_words, prefix_word_perplexity} for eval (validation) and test: the total NLL
  (loss x scored tokens) over the split's words, one <eos> per line counted as a word."""
  result = {}
  for prefix, split in (("eval", "validation"), ("test", "test")):
    if f"{prefix}_loss" not in metrics:
      continue
    total = metrics[f"{prefix}_loss"] * metrics[f"{prefix}_tokens"]
    words = word_counts[split]
    result[f"{prefix}_words"] = words
    result[f"{prefix}_word_perplexity"] = math.exp(min(total / words, 80.0))
  return result


def sample(cfg: ExperimentConfig, workdir: str, prompt: Optional[str],
           prompts_file: Optional[str] = None) -> str:
  if prompts_file is not None and prompt is not None:
    raise UserError("give --prompt or --prompts_file, not both")
  prompts = None
  if prompts_file is not None:
    prompts = [line for line in read_lines(prompts_file, "--prompts_file") if line]
    if not prompts:
      raise DataError(f"--prompts_file {prompts_file} holds no prompt")
  task = build_task(cfg, workdir, need_data=False)
  params, step = task_lib.inference_state(task)
  if prompts is not None and cfg.decode.strategy == "beam":
    text = n_best_text(prompts, beam_continuations(task, params, prompts), numbered=True)
  elif prompts is not None:
    continuations = sample_prompts(task, params, prompts)
    text = "\n".join(f"===== prompt {number} =====\n{prompt}{continuation}"
                     for number, (prompt, continuation)
                     in enumerate(zip(prompts, continuations), start=1))
  else:
    text = continue_prompt(task, params, prompt if prompt is not None else cfg.decode.prompt)
  _record_sample(workdir, step, text)
  return text


def attention(cfg: ExperimentConfig, workdir: str, inputs: task_lib.ModeInputs) -> list[str]:
  """--mode=attention: the self-attention weights of every layer over --input's tokens (the
  first model.max_length), as <output>/self_attention.npy [L, H, T, T] and one PNG per layer."""
  cfg, text, directory = task_lib.attention_inputs(cfg, inputs)
  task = build_task(cfg, workdir, need_data=False)
  params = task_lib.inference_params(task)
  ids = task.tokenizer.encode(text)
  if len(ids) == 0:
    raise DataError("--input holds no token")
  if len(ids) > cfg.model.max_length:
    logging.warning("--input has %d tokens: drawing the first model.max_length=%d", len(ids),
                    cfg.model.max_length)
    ids = ids[:cfg.model.max_length]
  out = jax.jit(lambda params, tokens: task.model.apply(
      {"params": params}, tokens, deterministic=True, return_attention_weights=True))(
          params, jnp.asarray(ids)[None])
  labels = attention_plots.token_labels(task.tokenizer, ids)
  paths = attention_plots.write_maps(directory, "self_attention",
                                     np.asarray(out.attention_weights)[:, 0], labels, labels,
                                     "self-attention")
  logging.info("wrote %d attention maps and self_attention.npy to %s", len(paths), directory)
  return paths


def run(cfg: ExperimentConfig, workdir: str, mode: str, inputs: task_lib.ModeInputs) -> None:
  if mode == "train":
    train(cfg, workdir)
  elif mode == "eval":
    evaluate(cfg, workdir)
  elif mode == "sample":
    sample(cfg, workdir, inputs.prompt, inputs.prompts_file)
  elif mode == "attention":
    attention(cfg, workdir, inputs)
  elif mode == "export":
    task_lib.export(build_task(cfg, workdir, need_data=False), inputs)
  else:
    raise UserError(f"--mode={mode} is not available for experiment clm: "
                    "use train, eval, sample, attention or export")
