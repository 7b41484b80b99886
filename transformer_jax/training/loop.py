"""The training loop: restore or initialise, step, log, evaluate, checkpoint, stop cleanly.

It knows nothing of the task. The experiment hands it an objective, a function
from step to a host batch (a pure function of the step, so resumes are exact), a
function giving the evaluation batches and, optionally, a function of the
parameters adding metrics the batches cannot give (seq2seq: BLEU of decoded
translations).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import signal
import time
from typing import Any, Callable, Iterable, Optional

import flax.linen as nn
import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh

from transformer_jax import config_choices
from transformer_jax.config_sections import TrainConfig
from transformer_jax.training import nonfinite, partitioning, steps, train_state
from transformer_jax import parameter_paths
from transformer_jax.training.checkpointing import Checkpointer
from transformer_jax.training.metrics_writer import MetricsWriter
from transformer_jax.training.optimizer import learning_rate_schedule, make_optimizer


MoreMetrics = Callable[[Any], dict[str, float]]  # params -> metrics.


def _evaluate(eval_step, objective, params, eval_batches: Iterable[dict], mesh: Mesh,
              more_metrics: Optional[MoreMetrics]) -> dict[str, float]:
  metrics = objective.summarize(steps.evaluate(eval_step, params, eval_batches, mesh))
  if more_metrics is not None:
    metrics.update(more_metrics(params))
  return metrics


@dataclasses.dataclass
class TrainResult:
  state: Any
  last_eval: dict[str, float]
  interrupted: bool


def _duration(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  hours, rest = divmod(seconds, 3600)
  return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _finite_mean(values: np.ndarray, skipped: np.ndarray) -> float:
  """Mean over the steps that were applied; NaN (null in metrics.jsonl) if none was."""
  applied = values[~skipped]
  return float(np.mean(applied)) if applied.size else float("nan")


def format_metrics(metrics: dict[str, float]) -> str:
  """'name value | ...': floats to 4 decimals, counts as integers."""
  return " | ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in metrics.items())


class _StopRequest:
  """Turns SIGINT/SIGTERM into a flag the loop checks between steps."""

  def __init__(self):
    self.signal_name: Optional[str] = None
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGINT, signal.SIGTERM):
      self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    self.signal_name = signal.Signals(signum).name

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def _merged(params, warm_params: Optional[dict]):
  """`params` with the leaves at `warm_params`' paths taken from it."""
  if warm_params is None:
    return params
  kept = parameter_paths.split(params, frozenset(parameter_paths.flat(warm_params)))[1]
  return parameter_paths.merge(kept, warm_params)


def abstract_params(init_params: Callable):
  """The parameter tree's shapes and dtypes (unboxed), traced, never computed."""
  return nn.unbox(jax.eval_shape(init_params, jax.random.key(0)))


class Trainer:
  """Owns the sharded state, its checkpoints and the metrics of one workdir.

  The parameters matching train.trainable train; the others stay frozen
  (bit-identical) and have no optimizer state. A pattern that matches nothing is a
  ConfigError.
  """

  def __init__(self, *, objective, init_params: Callable, config: TrainConfig, mesh: Mesh,
               workdir: str, checkpoint_metadata: dict[str, Any],
               axis_rules=partitioning.LOGICAL_AXIS_RULES,
               frozen_params: Optional[Any] = None):
    """checkpoint_metadata: what every checkpoint records (the tokenizer's fingerprint, the
    model config, an adapter's base fingerprint), compared on restore.
    frozen_params: when given (an adapter's base, already loaded), checkpoints hold only
    the trainable parameters (with the optimizer state), and a restore takes the frozen
    rest from it."""
    self.objective = objective
    self.frozen_params = frozen_params
    self.config = config
    self.mesh = mesh
    self.axis_rules = axis_rules
    self.workdir = workdir
    self.metadata = checkpoint_metadata
    self.optimizer = make_optimizer(config)
    self.schedule = learning_rate_schedule(config)
    self._init_params = init_params
    self.trainable = parameter_paths.select(abstract_params(init_params),
                                            config_choices.patterns(config.trainable),
                                            "train.trainable")
    self.abstract_state, self.shardings = train_state.state_shardings(
        init_params, self.optimizer, mesh, self.trainable, axis_rules)
    # Several CPU devices on few cores: keep one step in flight (see the tests).
    self.synchronous = jax.default_backend() == "cpu" and mesh.devices.size > 1

  @functools.cached_property
  def checkpointer(self) -> Checkpointer:
    """Made on first use: building a Trainer writes nothing, so every check that follows
    it can still stop a run before the workdir exists."""
    return Checkpointer(self.workdir, self.config.keep_checkpoints)

  def restore(self, params_only: bool = False):
    """The latest readable checkpoint's state, or None. Raises CheckpointError on mismatch.

    params_only: for modes that do not train; the state's opt_state is then None.
    """
    restored = self.checkpointer.restore_latest(self._stored(self.abstract_state), self.metadata,
                                                params_only=params_only)
    if restored is None:
      return None
    state, _ = restored
    if self.frozen_params is not None:
      state = state.replace(params=parameter_paths.merge(state.params, self.frozen_params))
    logging.info("%s %s at step %d", "resumed from" if not params_only else "restored",
                 self.checkpointer.directory, int(state.step))
    return state

  def initial_state(self, warm_params: Optional[dict] = None):
    """Step 0: fresh parameters, or those at the paths of `warm_params` taken from it
    (a warm start; the optimizer state is fresh either way)."""
    state = train_state.init_state(self._init_params, self.optimizer, self.mesh,
                                   self.config.seed, self.trainable, self.shardings)
    return state.replace(params=_merged(state.params, warm_params))

  def initial_params(self, warm_params: Optional[dict] = None):
    """The parameters of `initial_state`, without an optimizer state (for the modes that
    do not train)."""
    init = jax.jit(lambda key: nn.unbox(self._init_params(key)),
                   out_shardings=self.shardings.params)
    return _merged(init(jax.random.key(self.config.seed)), warm_params)

  def log_trainable(self) -> None:
    """'trainable parameters: N of M (p%)', at the start of every run."""
    trained, _ = parameter_paths.split(self.abstract_state.params, self.trainable)
    count, total = parameter_paths.size(trained), parameter_paths.size(self.abstract_state.params)
    logging.info("trainable parameters: %s of %s (%.2f%%)", f"{count:,}", f"{total:,}",
                 100.0 * count / total)

  def _save(self, step: int, state) -> None:
    """Checkpoints `state` unless it holds a NaN or inf, which would replace a good checkpoint."""
    if not nonfinite.all_finite(state):
      raise nonfinite.nonfinite_parameters_error(step, self.checkpointer.latest_step())
    self.checkpointer.save(step, self._stored(state), self.metadata)

  def _stored(self, state):
    """What a checkpoint holds of `state`: all of it, or its trainable parameters only."""
    if self.frozen_params is None:
      return state
    return state.replace(params=parameter_paths.split(state.params, self.trainable)[0])

  def _steps_in_next_call(self, step: int) -> int:
    """Up to train.steps_per_call steps, never past a log, eval or checkpoint step.

    Calls end at multiples of steps_per_call, so a resumed run groups its steps
    exactly as the uninterrupted run does.
    """
    c = self.config
    periods = (c.steps_per_call, c.log_every_steps, c.eval_every_steps,
               c.checkpoint_every_steps)
    return min([(step // p + 1) * p for p in periods] + [c.num_steps]) - step

  def evaluate(self, params, eval_batches: Iterable[dict],
               more_metrics: Optional[MoreMetrics] = None,
               param_shardings=None) -> dict[str, float]:
    """param_shardings: those of `params` when they are not the train state's (int8)."""
    eval_step = steps.make_eval_step(self.objective, param_shardings or self.shardings.params,
                                     self.mesh, self.axis_rules)
    return _evaluate(eval_step, self.objective, params, eval_batches, self.mesh, more_metrics)

  def train(self, state, batch_at: Callable[[int], dict],
            eval_batches: Callable[[], Iterable[dict]], tokens_per_step: int,
            more_metrics: Optional[MoreMetrics] = None) -> TrainResult:
    """Runs from `state.step` to `config.num_steps`. Stops cleanly on SIGINT/SIGTERM.

    more_metrics(params) is added to every evaluation; its time, like the
    evaluation's, is kept out of tokens/s and the ETA.
    """
    c = self.config
    self.log_trainable()
    train_step = steps.make_train_step(self.objective, self.optimizer, self.shardings,
                                       self.mesh, self.trainable, self.axis_rules,
                                       c.microbatches, c.flat_gradient_all_reduce)
    eval_step = steps.make_eval_step(self.objective, self.shardings.params, self.mesh,
                                     self.axis_rules)
    # Made by a jit, not device_put: in a multi-process run the mesh spans other hosts.
    dropout_key = jax.jit(lambda: jax.random.key(c.seed + 1),
                          out_shardings=partitioning.replicated(self.mesh))()
    writer = MetricsWriter(self.workdir)
    watch = nonfinite.NonFiniteWatch(c.max_nonfinite_steps)
    step = int(state.step)
    last_eval: dict[str, float] = {}
    pending: list[dict] = []
    interval_start, excluded_seconds, input_seconds = time.perf_counter(), 0.0, 0.0
    compiled, timed_steps = False, 0  # Steps timed since the last log line.
    loop_start, first_step = time.perf_counter(), step
    interrupted = False
    # Closing waits for the last checkpoint, which may fail (CheckpointWriteError).
    with _StopRequest() as stop, self.checkpointer.closing(), contextlib.closing(writer):
      while step < c.num_steps:
        count = self._steps_in_next_call(step)
        input_start = time.perf_counter()
        rows = [batch_at(s) for s in range(step, step + count)]
        batches = partitioning.put_batch(
            {k: np.stack([r[k] for r in rows]) for k in rows[0]}, self.mesh, stacked=True)
        input_seconds += time.perf_counter() - input_start
        state, metrics = train_step(state, batches, dropout_key)
        if self.synchronous or not compiled:
          jax.block_until_ready(metrics)
        pending.append(metrics)
        watch.add(step, metrics["nonfinite"])
        step += count
        if compiled:
          timed_steps += count
        else:  # The first call compiles; keep it out of tokens/s and the ETA.
          compiled = True
          interval_start, excluded_seconds, input_seconds = time.perf_counter(), 0.0, 0.0
        stopping = watch.poll() is not None  # Too many skipped steps in a row.
        if step % c.log_every_steps == 0 or step == c.num_steps or stopping:
          fetched = jax.device_get(pending)
          skipped = np.concatenate([m["nonfinite"] for m in fetched])
          elapsed = time.perf_counter() - interval_start - excluded_seconds
          if timed_steps:
            seconds_per_step = elapsed / timed_steps
          else:  # Only the compiling call so far: an honest, if pessimistic, figure.
            seconds_per_step = (time.perf_counter() - loop_start) / (step - first_step)
          record = {
              "train_loss": _finite_mean(np.concatenate([m["train_loss"] for m in fetched]),
                                         skipped),
              "train_grad_norm": _finite_mean(np.concatenate([m["grad_norm"] for m in fetched]),
                                              skipped),
              "learning_rate": float(self.schedule(step - 1)),
              "tokens_per_second": tokens_per_step / seconds_per_step,
              "input_milliseconds_per_step": 1000 * input_seconds / max(timed_steps, 1),
          }
          skipped_note = ""
          if skipped.any():  # Only then, so a finite run's records keep their keys.
            record["train_nonfinite_steps"] = int(skipped.sum())
            skipped_note = f" | skipped {int(skipped.sum())} non-finite steps"
          writer.write(step, record)
          logging.info("step %d/%d | train_loss %.4f | lr %.2e | %s tokens/s | ETA %s%s",
                       step, c.num_steps, record["train_loss"], record["learning_rate"],
                       f"{record['tokens_per_second']:,.0f}",
                       _duration(seconds_per_step * (c.num_steps - step)), skipped_note)
          if watch.poll(wait=True) is not None:
            raise watch.error(self.checkpointer.latest_step())
          pending, timed_steps = [], 0
          interval_start, excluded_seconds, input_seconds = time.perf_counter(), 0.0, 0.0
        other_start = time.perf_counter()
        if step % c.eval_every_steps == 0 or step == c.num_steps:
          last_eval = _evaluate(eval_step, self.objective, state.params, eval_batches(),
                                self.mesh, more_metrics)
          writer.write(step, last_eval)
          logging.info("step %d | %s", step, format_metrics(last_eval))
        if step % c.checkpoint_every_steps == 0 or step == c.num_steps:
          self._save(step, state)
        excluded_seconds += time.perf_counter() - other_start
        if stop.signal_name is not None:
          self._save(step, state)
          logging.warning("%s received: saved a checkpoint at step %d; re-run the same "
                          "command to resume", stop.signal_name, step)
          interrupted = True
          break
    return TrainResult(state=state, last_eval=last_eval, interrupted=interrupted)
