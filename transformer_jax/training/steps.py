"""The jitted train step and evaluation, sharded over the mesh.

The objective (`transformer_jax.objectives.objective`) gives the loss as sums
over counts; these builders add the optimizer, the trainable subset, the
shardings and the jit. XLA inserts the cross-device reductions: the loss is a
mean over the global batch whatever the number of devices.
"""

from typing import Iterable

import flax.linen as nn
import jax
import jax.flatten_util
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from transformer_jax.objectives import objective as objective_lib
from transformer_jax.training import nonfinite, partitioning
from transformer_jax import parameter_paths
from transformer_jax.training.train_state import TrainState


class in_mesh:  # pylint: disable=invalid-name
  """A jitted function called (and so traced) with the mesh and axis rules in context,
  where the models' activation sharding constraints apply; `lower` too (benchmarks read
  the compiled step's memory analysis)."""

  def __init__(self, jitted, mesh: Mesh, rules):
    self.jitted, self.mesh, self.rules = jitted, mesh, rules

  def __call__(self, *args, **kwargs):
    with partitioning.mesh_rules(self.mesh, self.rules):
      return self.jitted(*args, **kwargs)

  def lower(self, *args, **kwargs):
    with partitioning.mesh_rules(self.mesh, self.rules):
      return self.jitted.lower(*args, **kwargs)


def split_microbatches(batch: dict, count: int, mesh: Mesh) -> dict:
  """[B, ...] leaves -> [count, B/count, ...]: each device's rows cut into `count`
  consecutive micro-batches, so micro-batch i holds rows of every device and splitting
  moves no data between devices."""
  ways = partitioning.batch_parallelism(mesh)

  def split(leaf):
    rows = leaf.shape[0] // (ways * count)
    leaf = leaf.reshape((ways, count, rows) + leaf.shape[1:]).swapaxes(0, 1)
    leaf = leaf.reshape((count, ways * rows) + leaf.shape[3:])
    return jax.lax.with_sharding_constraint(leaf, partitioning.stacked_batch_sharding(mesh))

  return jax.tree_util.tree_map(split, batch)


def _loss_and_grads(grad_fn, objective, trained, batch, rng, microbatches: int, split):
  """(loss, gradients) of one batch: at once, or summed over micro-batches (`split` cuts
  the batch's leaves into [microbatches, ...]) each divided by the whole batch's counts."""
  if microbatches == 1:
    (loss, _), grads = grad_fn(trained, batch, rng)
    return loss, grads
  counts = objective.counts(batch)

  def accumulate(carry, inputs):
    index, micro = inputs
    (loss, _), grads = grad_fn(trained, micro, jax.random.fold_in(rng, index), counts)
    return jax.tree_util.tree_map(jnp.add, carry, (loss, grads)), None

  zeros = (jnp.zeros((), jnp.float32), jax.tree_util.tree_map(jnp.zeros_like, trained))
  (loss, grads), _ = jax.lax.scan(accumulate, zeros,
                                  (jnp.arange(microbatches), split(batch)))
  return loss, grads


def _flat_all_reduce(grad_fn, objective, mesh: Mesh, microbatches: int):
  """(trained, batch, rng) -> (loss, gradients), each device's rows differentiated on
  their own (`shard_map`) and the gradients summed in ONE all-reduce of one flat buffer.

  XLA's own data parallelism all-reduces the gradients as a tuple of arrays, which the
  CPU backend does several times slower than one buffer of the same size. Each
  device's sums are divided by the global counts (one small all-reduce first), so
  the summed loss and gradient are the global batch's. Dropout draws per device
  (the key folded with the device's index), so with dropout a run depends on its
  number of devices.
  """
  axes = partitioning.BATCH_AXES
  spec = jax.sharding.PartitionSpec

  def local(trained, batch, rng):
    counts = jax.lax.psum(objective.counts(batch), axes)
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axes))

    def given_counts(trained, batch, rng, micro_counts=None):  # Always the global counts.
      del micro_counts
      return grad_fn(trained, batch, rng, counts)

    def split(batch):
      return jax.tree_util.tree_map(
          lambda leaf: leaf.reshape((microbatches, -1) + leaf.shape[1:]), batch)

    with nn.logical_axis_rules(()):  # Per device: the models' layout constraints do not apply.
      loss, grads = _loss_and_grads(given_counts, objective, trained, batch, rng, microbatches,
                                    split)
    flat, unravel = jax.flatten_util.ravel_pytree(grads)
    flat, loss = jax.lax.psum((flat, loss), axes)
    return loss, unravel(flat)

  return jax.shard_map(local, mesh=mesh, in_specs=(spec(), spec(axes), spec()),
                       out_specs=(spec(), spec()), check_vma=False)


def make_train_step(objective, optimizer: optax.GradientTransformation, state_shardings,
                    mesh: Mesh, trainable: frozenset[str],
                    rules=partitioning.LOGICAL_AXIS_RULES, microbatches: int = 1,
                    flat_all_reduce: bool = False):
  """Returns steps(state, batches, dropout_key) -> (state, metrics), one jit.

  batches: each leaf [k, B, ...], the batches of k consecutive steps; metrics:
  each leaf [k]: train_loss, grad_norm and nonfinite (the step was skipped, see
  `nonfinite`). The k updates run in a `lax.scan` inside one call, which saves
  the per-call dispatch and, where collectives force waiting for each call, the
  synchronisation: about 3 ms of a 37 ms step for `clm.py:baby` on 2 CPU cores.
  trainable: the parameter paths that train. Gradients are taken of those only
  (the frozen rest enters the loss as a constant) and the optimizer sees only them.
  microbatches (gradient accumulation): each device's rows are cut into this many
  micro-batches, scanned; each one's sums are divided by the whole batch's counts, so
  the summed loss and gradient are the whole batch's (micro-batch i draws its dropout
  with fold_in(step key, i), so only dropout makes it differ).
  flat_all_reduce: data parallelism by `_flat_all_reduce` (pure data-parallel meshes).
  """

  def one_step(state: TrainState, batch, dropout_key):
    # A fresh key per step that depends only on (seed, step): resumes are exact.
    rng = jax.random.fold_in(dropout_key, state.step)
    trained, frozen = parameter_paths.split(state.params, trainable)

    def loss_of_trained(trained, batch, rng, counts=None):
      params = parameter_paths.merge(trained, frozen)
      return objective_lib.train_loss(objective, params, batch, rng, counts)

    grad_fn = jax.value_and_grad(loss_of_trained, has_aux=True)
    if flat_all_reduce:
      loss, grads = _flat_all_reduce(grad_fn, objective, mesh, microbatches)(trained, batch,
                                                                             rng)
    else:
      loss, grads = _loss_and_grads(grad_fn, objective, trained, batch, rng, microbatches,
                                    lambda batch: split_microbatches(batch, microbatches, mesh))
    updates, opt_state = optimizer.update(grads, state.opt_state, trained)
    new_trained = optax.apply_updates(trained, updates)
    grad_norm = optax.global_norm(grads)
    # A NaN/inf loss or gradient changes nothing; the step counter still advances.
    finite = nonfinite.step_is_finite(loss, grad_norm)
    new_trained, opt_state = nonfinite.keep_if_finite(finite, (new_trained, opt_state),
                                                      (trained, state.opt_state))
    metrics = {"train_loss": loss, "grad_norm": grad_norm, "nonfinite": ~finite}
    return TrainState(step=state.step + 1, params=parameter_paths.merge(new_trained, frozen),
                      opt_state=opt_state), metrics

  def steps(state: TrainState, batches, dropout_key):
    return jax.lax.scan(lambda s, batch: one_step(s, batch, dropout_key), state, batches)

  replicated = partitioning.replicated(mesh)
  return in_mesh(jax.jit(steps,
                         in_shardings=(state_shardings, partitioning.stacked_batch_sharding(mesh),
                                       replicated),
                         out_shardings=(state_shardings, replicated),
                         donate_argnums=(0,)), mesh, rules)


def make_eval_step(objective, param_shardings, mesh: Mesh, rules=partitioning.LOGICAL_AXIS_RULES):
  """Returns eval_step(params, batch) -> sums (replicated scalars)."""
  return in_mesh(jax.jit(lambda params, batch: objective_lib.eval_sums(objective, params, batch),
                         in_shardings=(param_shardings, partitioning.batch_sharding(mesh)),
                         out_shardings=partitioning.replicated(mesh)), mesh, rules)


def evaluate(eval_step, params, batches: Iterable[dict], mesh: Mesh) -> dict[str, float]:
  """Sums each metric over all batches (exact means, whatever the batch split)."""
  totals = None
  for batch in batches:
    # Waiting for each batch keeps at most one collective in flight: several CPU
    # devices on few cores have deadlocked XLA's rendezvous otherwise.
    sums = jax.block_until_ready(eval_step(params, partitioning.put_batch(batch, mesh)))
    totals = sums if totals is None else jax.tree_util.tree_map(jnp.add, totals, sums)
  return {k: float(v) for k, v in jax.device_get(totals).items()}
