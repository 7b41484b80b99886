"""The device mesh and how arrays are laid out on it.

Batches are split along the mesh axis 'data'. Parameters carry logical axis names
(see `transformer_jax.models.initializers`); `LOGICAL_AXIS_RULES` maps them to mesh
axes. Every parameter axis maps to None today (replicated: data parallelism). FSDP
or tensor parallelism means adding mesh axes and changing these rules, not the model.
"""

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from transformer_jax.configuration import MeshConfig
from transformer_jax.errors import ConfigError

DATA_AXIS = "data"
LOGICAL_AXIS_RULES = (
    ("batch", DATA_AXIS),
    ("vocab", None),
    ("embed", None),
    ("length", None),
    ("heads", None),
    ("kv_heads", None),  # Key/value heads: fewer than query heads with GQA/MQA.
    ("head_dim", None),
    ("additive_dim", None),  # Additive attention's hidden width.
    ("mlp", None),
    ("token_types", None),
    ("classes", None),
)


def configure_cpu_devices(config: MeshConfig) -> None:
  """Applies `mesh.num_cpu_devices`; must run before JAX starts its backends."""
  if config.num_cpu_devices:
    jax.config.update("jax_num_cpu_devices", config.num_cpu_devices)


def make_mesh(config: MeshConfig, global_batch_size: int) -> Mesh:
  devices = jax.devices()
  size = len(devices) if config.data_axis_size == -1 else config.data_axis_size
  if size > len(devices):
    raise ConfigError("mesh.data_axis_size", f"{size} devices asked for, {len(devices)} present")
  if global_batch_size % size:
    raise ConfigError("train.batch_size",
                      f"{global_batch_size} is not divisible by the {size} data-parallel devices")
  return Mesh(np.array(devices[:size]), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over 'data'; the rest replicated."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def stacked_batch_sharding(mesh: Mesh) -> NamedSharding:
  """[k, B, ...]: the batches of k steps, each split over 'data' along B."""
  return NamedSharding(mesh, PartitionSpec(None, DATA_AXIS))


def logical_shardings(boxed_tree, mesh: Mesh):
  """Shardings for a tree of `nn.LogicallyPartitioned` values (or their shapes)."""
  specs = nn.get_partition_spec(boxed_tree)
  return nn.logical_to_mesh_sharding(specs, mesh, LOGICAL_AXIS_RULES)


def put_batch(batch: dict, mesh: Mesh, stacked: bool = False) -> dict:
  """Host numpy rows of this process -> global jax.Arrays sharded over 'data'.

  stacked: leaves are [k, B/P, ...] (k steps' batches) rather than [B/P, ...].
  """
  sharding = stacked_batch_sharding(mesh) if stacked else batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}
