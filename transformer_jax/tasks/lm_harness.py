"""lm-evaluation-harness (`lm-eval`, the `eval` extra) on this project's language models.

`HarnessModel` is an `lm_eval.api.model.LM` over a loaded model (`transformer_jax.load`):
a clm or sft run, an imported GPT-2 (hf:DIR), int8 (model.quantize=int8) and adapter
runs. It answers the harness's three request types with this project's own code:

  loglikelihood          (context, continuation) -> (log P(continuation | context),
                         whether the continuation is the greedy one), the pair encoded as
                         the harness encodes it (`evaluation/log_likelihood.py`: the
                         context's trailing spaces move to the continuation; an empty
                         context becomes the end-of-text token)
  loglikelihood_rolling  (text,) -> log P(text): disjoint windows of model.max_length
                         predicted tokens after the end-of-text token, as the harness cuts
  generate_until         (context, {until, max_gen_toks, do_sample, temperature, ...}) ->
                         the KV-cached decoder's continuation (`decoding/continuer.py`),
                         greedy unless do_sample, ended by EOS or max_gen_toks and cut at
                         the first `until` string; a context keeps its last
                         model.max_length - max_gen_toks tokens
Requests are sorted by length and run in padded batches of eval.batch_size rows in a few
length buckets, so compilations stay few. The model's context is model.max_length; a
byte-level BPE (GPT-2's) encodes a continuation's leading space as running text does.
Registered with lm-eval as "transformer_jax" when this module is imported (model_args:
path=RUN and config overrides by dotted name); lm-eval's own command line does not discover
models of other packages, so `python -m transformer_jax.tasks.lm_harness --model
transformer_jax --model_args path=runs/clm --tasks ...` is that command with this model in it.
"""

from __future__ import annotations

import collections
import importlib
import json
import os
import sys
from typing import Any, Optional, Sequence

from absl import logging

from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.errors import UserError
from transformer_jax.evaluation import log_likelihood
from transformer_jax.run import modes, weights
from transformer_jax.tasks import loading
from transformer_jax.tasks.loaded_model import LoadedModel

NAME = "transformer_jax"
EXPERIMENTS = ("clm", "sft")
RESULTS_FILE = "lm_eval_step{step}.json"
BUCKET = 32  # Generation prompts are left-padded to a multiple of this many tokens.
try:
  # lm-eval fills its registry with its own models (lazily) only while it is empty:
  # they go in first, so that registering this one keeps "hf" and the others findable.
  importlib.import_module("lm_eval.models")
  from lm_eval.api.model import LM
  from lm_eval.api.registry import register_model
except ImportError:  # The `eval` extra is not installed: the mode says so in one line.
  LM, register_model = object, None


def _require_lm_eval() -> None:
  if register_model is None:
    raise UserError("lm-evaluation-harness is not installed: pip install -e '.[eval]'")


class HarnessModel(LM):  # pylint: disable=abstract-method
  """lm-eval's model interface over a `LoadedModel` (see the module docstring)."""

  def __init__(self, path: Optional[str] = None, loaded: Optional[LoadedModel] = None,
               **overrides):
    """path: what `transformer_jax.load` takes (model_args path=...), or `loaded`, a model
    loaded already; overrides: config fields by dotted name (model_args
    model.quantize=int8). lm-eval's own batch_size, device and max_batch_size are ignored:
    batches are eval.batch_size rows, on the model's mesh."""
    _require_lm_eval()
    super().__init__()
    for ignored in ("batch_size", "max_batch_size", "device"):
      overrides.pop(ignored, None)
    if loaded is None:
      if path is None:
        raise UserError("the transformer_jax harness model needs path=RUN (a workdir, an "
                        "exported folder or hf:DIR)")
      loaded = loading.load(path, **overrides)
    if loaded.experiment not in EXPERIMENTS:
      raise UserError(f"lm-evaluation-harness evaluates language models (experiments "
                      f"{', '.join(EXPERIMENTS)}), not a {loaded.experiment} model")
    self.loaded = loaded

  @classmethod
  def load(cls, path: str, **overrides) -> HarnessModel:
    return cls(path=path, **overrides)

  @property
  def max_length(self) -> int:
    return self.loaded.config.model.max_length

  def loglikelihood(self, requests) -> list[tuple[float, bool]]:
    encode, prefix = self.loaded.tokenizer.encode, self.loaded.eos_id
    pairs = [log_likelihood.encode_pair(encode, request.args[0], request.args[1], prefix)
             for request in requests]
    return [(result.log_prob, result.is_greedy) for result in self.loaded.score_requests(pairs)]

  def loglikelihood_rolling(self, requests) -> list[float]:
    windows, owners = [], []
    for index, request in enumerate(requests):
      for window in log_likelihood.rolling_windows(
          self.loaded.tokenizer.encode(request.args[0]), self.loaded.eos_id, self.max_length):
        windows.append(window)
        owners.append(index)
    totals = [0.0] * len(requests)
    for owner, result in zip(owners, self.loaded.score_requests(windows)):
      totals[owner] += result.log_prob
    return totals

  def generate_until(self, requests) -> list[str]:
    groups = collections.defaultdict(list)
    for index, request in enumerate(requests):
      settings = dict(request.args[1]) if len(request.args) > 1 else {}
      groups[json.dumps(settings, sort_keys=True, default=str)].append(
          (index, request.args[0], settings))
    outputs = [""] * len(requests)
    for members in groups.values():
      settings = members[0][2]
      until = settings.get("until") or []
      until = [until] if isinstance(until, str) else list(until)
      continuer = self.loaded.continuer(**_decode_settings(settings, self.max_length))
      new_tokens = continuer.decode.max_new_tokens
      room = self.max_length + 1 - new_tokens  # Prompt slots that leave room for them.
      prompts = [(index, self._context_ids(context, room)) for index, context, _ in members]
      prompts.sort(key=lambda item: len(item[1]))
      size = self.loaded.config.eval.batch_size
      for start in range(0, len(prompts), size):
        batch = prompts[start:start + size]
        bucket = min(-(-max(len(ids) for _, ids in batch) // BUCKET) * BUCKET, room)
        texts = continuer.continue_ids(self.loaded.params, [ids for _, ids in batch], bucket)
        for (index, _), text in zip(batch, texts):
          outputs[index] = cut_at(text, until)
    return outputs

  def _context_ids(self, context: str, room: int) -> list[int]:
    """The context's tokens, its last `room` (the end-of-text token for an empty one)."""
    ids = [int(t) for t in self.loaded.tokenizer.encode(context)]
    if not ids:
      ids = [self.loaded.eos_id if self.loaded.eos_id is not None else 0]
    return ids[-room:]


def cut_at(text: str, until: Sequence[str]) -> str:
  """`text` before the first occurrence of any of the `until` strings."""
  end = min([text.find(stop) for stop in until if stop and stop in text] + [len(text)])
  return text[:end]


def _decode_settings(settings: dict[str, Any], max_length: int) -> dict[str, Any]:
  """decode.* from a generate_until request's settings: greedy unless do_sample with a
  positive temperature; max_gen_toks new tokens (at most model.max_length - 1)."""
  temperature = float(settings.get("temperature", 0.0) or 0.0)
  sample = bool(settings.get("do_sample", False)) and temperature > 0
  decode = {"strategy": "sample" if sample else "greedy",
            "max_new_tokens": max(1, min(int(settings.get("max_gen_toks", 256)), max_length - 1))}
  if sample:
    decode.update(temperature=temperature, top_k=int(settings.get("top_k", 0) or 0),
                  top_p=float(settings.get("top_p", 1.0) or 1.0))
  return decode


if register_model is not None:
  register_model(NAME)(HarnessModel)


def task_manager(include_path: str, names: list[str]):
  """lm-eval's task index for `names`: --include_path's YAML files alone when they define
  every name (indexing lm-eval's own ~15k tasks takes 10-25 s on a small CPU), else
  those and lm-eval's own."""
  from lm_eval.tasks import TaskManager  # pylint: disable=import-outside-toplevel
  if include_path:
    manager = TaskManager(include_path=include_path, include_defaults=False)
    if all(name in manager.all_tasks for name in names):
      return manager
  return TaskManager(include_path=include_path or None)


def evaluate(cfg: ExperimentConfig, workdir: str, inputs: modes.ModeInputs,
             build_task) -> dict:
  """--mode=lm_eval: the run's model (`weights.inference_state`: the workdir's, else
  train.init_from's) on --tasks through lm-eval; the results JSON to --output (default
  <workdir>/lm_eval_step<N>.json) and the harness's table to stdout."""
  _require_lm_eval()
  import lm_eval  # pylint: disable=import-outside-toplevel
  from lm_eval.utils import handle_non_serializable, make_table  # pylint: disable=import-outside-toplevel
  if not inputs.tasks:
    raise UserError("--mode=lm_eval needs --tasks=NAME[,NAME...] (lm-eval's task names, or "
                    "those of YAML files under --include_path)")
  task = build_task(cfg, workdir, need_data=False)
  params, step = weights.inference_state(task)
  model = HarnessModel(loaded=LoadedModel(task, params, step, name=workdir))
  names = [name.strip() for name in inputs.tasks.split(",") if name.strip()]
  manager = task_manager(inputs.include_path, names)
  unknown = [name for name in names if name not in manager.all_tasks]
  if unknown:
    raise UserError(f"--tasks: lm-eval knows no task {', '.join(unknown)} (with --include_path="
                    f"{inputs.include_path or ''})")
  results = lm_eval.simple_evaluate(model=model, tasks=names, num_fewshot=inputs.num_fewshot,
                                    limit=inputs.limit, task_manager=manager, log_samples=False)
  output = inputs.output_path or os.path.join(workdir, RESULTS_FILE.format(step=step))
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  with open(output, "w", encoding="utf-8") as f:
    json.dump(results, f, indent=2, default=handle_non_serializable, ensure_ascii=False)
  print(make_table(results))
  logging.info("lm-eval results of step %d written to %s", step, output)
  return results


def main() -> None:
  """lm-eval's command line with this model registered: python -m transformer_jax.tasks.lm_harness
  --model transformer_jax --model_args path=runs/clm --tasks ... (see `lm_eval --help`)."""
  _require_lm_eval()
  from lm_eval.__main__ import cli_evaluate  # pylint: disable=import-outside-toplevel
  sys.exit(cli_evaluate())


if __name__ == "__main__":
  main()
