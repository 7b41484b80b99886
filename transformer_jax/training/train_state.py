"""The training state and its sharded initialisation.

The optimizer state covers the trainable parameters only (`train.trainable`):
frozen parameters get no moments and no updates.
"""

from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import optax
from jax.sharding import Mesh

from transformer_jax import parameter_paths
from transformer_jax.training import partitioning


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # int32 scalar: number of optimizer updates applied.
  params: Any  # Every parameter, trainable or frozen.
  opt_state: Any  # The optimizer's state of the trainable parameters.


def _boxed_state(init_params: Callable, optimizer: optax.GradientTransformation,
                 trainable: frozenset[str], key):
  params = init_params(key)
  # Optimizer moments are built from the boxed params, so they inherit the logical
  # axis names and are sharded like the parameters they track.
  trained, _ = parameter_paths.split(params, trainable)
  return TrainState(step=jax.numpy.zeros((), jax.numpy.int32), params=params,
                    opt_state=optimizer.init(trained))


def state_shardings(init_params: Callable, optimizer, mesh: Mesh, trainable: frozenset[str],
                    rules):
  """(abstract unboxed state with shardings attached, sharding tree).

  rules: the logical axis rules. A parameter that does not split evenly over the
  mesh axes its rule names is a ConfigError naming the axis.
  """
  key = jax.random.key(0)
  boxed = jax.eval_shape(lambda k: _boxed_state(init_params, optimizer, trainable, k), key)
  shardings = partitioning.logical_shardings(boxed, mesh, rules)
  partitioning.check_divisible(parameter_paths.flat(nn.unbox(boxed.params)),
                               parameter_paths.flat(shardings.params))
  abstract = jax.tree_util.tree_map(
      lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
      nn.unbox(boxed), shardings)
  return abstract, shardings


def sharded_abstract_params(init_params: Callable, mesh: Mesh, rules):
  """The parameters' shapes and dtypes with their shardings attached (nothing computed):
  what a warm start reads into, before any train state exists. A parameter that does not
  split evenly is a ConfigError naming the axis, as in `state_shardings`."""
  boxed = jax.eval_shape(init_params, jax.random.key(0))
  shardings = partitioning.logical_shardings(boxed, mesh, rules)
  partitioning.check_divisible(parameter_paths.flat(nn.unbox(boxed)),
                               parameter_paths.flat(shardings))
  return jax.tree_util.tree_map(
      lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), nn.unbox(boxed),
      shardings)


def init_state(init_params: Callable, optimizer, mesh: Mesh, seed: int,
               trainable: frozenset[str], shardings):
  """Initialises parameters and optimizer state directly into their shardings.

  init_params: key -> boxed params (`model.init(...)['params']`).
  """
  init = jax.jit(lambda k: nn.unbox(_boxed_state(init_params, optimizer, trainable, k)),
                 out_shardings=shardings)
  return init(jax.random.key(seed))

