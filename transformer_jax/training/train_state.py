"""The training state and its sharded initialisation."""

from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import optax
from jax.sharding import Mesh

from transformer_jax.training import partitioning


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # int32 scalar: number of optimizer updates applied.
  params: Any
  opt_state: Any


def _boxed_state(init_params: Callable, optimizer: optax.GradientTransformation, key):
  params = init_params(key)
  # Optimizer moments are built from the boxed params, so they inherit the logical
  # axis names and are sharded like the parameters they track.
  return TrainState(step=jax.numpy.zeros((), jax.numpy.int32), params=params,
                    opt_state=optimizer.init(params))


def state_shardings(init_params: Callable, optimizer, mesh: Mesh):
  """(abstract unboxed state with shardings attached, sharding tree)."""
  key = jax.random.key(0)
  boxed = jax.eval_shape(lambda k: _boxed_state(init_params, optimizer, k), key)
  shardings = partitioning.logical_shardings(boxed, mesh)
  abstract = jax.tree_util.tree_map(
      lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
      nn.unbox(boxed), shardings)
  return abstract, shardings


def init_state(init_params: Callable, optimizer, mesh: Mesh, seed: int):
  """Initialises parameters and optimizer state directly into their shardings.

  init_params: key -> boxed params (`model.init(...)['params']`).
  """
  _, shardings = state_shardings(init_params, optimizer, mesh)
  init = jax.jit(lambda k: nn.unbox(_boxed_state(init_params, optimizer, k)),
                 out_shardings=shardings)
  return init(jax.random.key(seed)), shardings
