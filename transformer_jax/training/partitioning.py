"""The device mesh, the one table of logical axis rules, and how arrays are laid out.

The mesh has three named axes (`mesh.*_axis_size`):
  data    data parallelism: each device group reads other rows of the batch;
  fsdp    fully sharded data parallelism (ZeRO-3): it reads other rows too, and every
          parameter and its optimizer state is split over it along the model width;
  tensor  tensor parallelism (Megatron): attention heads and the MLP width are split.
The batch is split over data × fsdp. Parameters carry logical axis names (see
`transformer_jax.models.initializers`), activations get `nn.with_logical_constraint`s
at block boundaries, and `LOGICAL_AXIS_RULES` maps every name to mesh axes, as in
Flax's lm1b and MaxText: changing the layout means changing this table (or
`mesh.axis_rules`), not the model. XLA inserts the collectives.
"""

from __future__ import annotations

import contextlib
import math

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from transformer_jax.config_sections import MeshConfig
from transformer_jax.errors import ConfigError

DATA_AXIS, FSDP_AXIS, TENSOR_AXIS = "data", "fsdp", "tensor"
MESH_AXES = (DATA_AXIS, FSDP_AXIS, TENSOR_AXIS)
BATCH_AXES = (DATA_AXIS, FSDP_AXIS)

# Logical name -> mesh axis (or axes, or None: replicated). Read top to bottom.
LOGICAL_AXIS_RULES = (
    # Parameters. FSDP splits the model width of every weight (each device holds 1/N
    # of every matrix and of its Adam moments); tensor parallelism splits heads and the
    # MLP width, so attention and MLP run on a slice of every device's heads.
    ("embed", FSDP_AXIS),
    ("heads", TENSOR_AXIS),
    ("kv_heads", TENSOR_AXIS),  # Fewer than query heads with GQA/MQA: must divide too.
    ("mlp", TENSOR_AXIS),
    ("vocab", None),  # Character vocabularies (65) rarely divide; the table splits by embed.
    ("head_dim", None),
    ("length", None),
    ("additive_dim", None),  # Additive attention's hidden width.
    ("token_types", None),
    ("classes", None),
    ("layers", None),  # Scanned layers' leading axis (model.scan_layers).
    # Activations: rows over data × fsdp, the model width whole between blocks.
    ("batch", BATCH_AXES),
    ("activation_batch", BATCH_AXES),
    ("activation_length", None),
    ("activation_embed", None),
    ("activation_kv_heads", TENSOR_AXIS),
    ("cache_length", None),
)
# The hidden states between blocks: [B, T, D].
ACTIVATION_AXES = ("activation_batch", "activation_length", "activation_embed")


def axis_rules(config: MeshConfig) -> tuple[tuple[str, object], ...]:
  """LOGICAL_AXIS_RULES with `mesh.axis_rules` overrides ('vocab=tensor,embed=none',
  'batch=data+fsdp') applied."""
  rules = dict(LOGICAL_AXIS_RULES)
  for item in filter(None, (part.strip() for part in config.axis_rules.split(","))):
    name, _, target = item.partition("=")
    axes = tuple(a for a in target.strip().split("+") if a and a != "none")
    if name.strip() not in rules or any(a not in MESH_AXES for a in axes):
      raise ConfigError("mesh.axis_rules", f"{item!r}: expected name=axis with a logical "
                        f"name of {sorted(rules)} and mesh axes of {MESH_AXES} or none")
    rules[name.strip()] = axes[0] if len(axes) == 1 else (axes or None)
  return tuple(rules.items())


def configure_cpu_devices(config: MeshConfig) -> None:
  """Applies `mesh.num_cpu_devices`; must run before JAX starts its backends."""
  if config.num_cpu_devices:
    jax.config.update("jax_num_cpu_devices", config.num_cpu_devices)


def axis_sizes(config: MeshConfig, num_devices: int) -> tuple[int, int, int]:
  """(data, fsdp, tensor) sizes; the one given as -1 takes the devices the others leave."""
  sizes = [config.data_axis_size, config.fsdp_axis_size, config.tensor_axis_size]
  fixed = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if num_devices % fixed:
      raise ConfigError("mesh.data_axis_size", f"the other axes ({fixed} devices) do not "
                        f"divide the {num_devices} devices present")
    sizes[sizes.index(-1)] = num_devices // fixed
  if math.prod(sizes) > num_devices:
    raise ConfigError("mesh.data_axis_size", f"data x fsdp x tensor = "
                      f"{' x '.join(map(str, sizes))} devices asked for, {num_devices} present")
  return tuple(sizes)


def make_mesh(config: MeshConfig, global_batch_size: int) -> Mesh:
  devices = jax.devices()
  data, fsdp, tensor = axis_sizes(config, len(devices))
  if global_batch_size % (data * fsdp):
    raise ConfigError("train.batch_size",
                      f"{global_batch_size} is not divisible by the {data * fsdp} "
                      "data-parallel devices")
  grid = np.array(devices[:data * fsdp * tensor]).reshape(data, fsdp, tensor)
  return Mesh(grid, MESH_AXES)


def batch_parallelism(mesh: Mesh) -> int:
  """How many ways the batch is split (data × fsdp)."""
  return mesh.shape[DATA_AXIS] * mesh.shape[FSDP_AXIS]


@contextlib.contextmanager
def mesh_rules(mesh: Mesh, rules):
  """The mesh and the axis rules for tracing: activations' logical constraints apply
  inside (outside, `nn.with_logical_constraint` does nothing)."""
  set_mesh = getattr(jax, "set_mesh", None)  # jax >= 0.7; older versions use the Mesh.
  with (set_mesh(mesh) if set_mesh else mesh), nn.logical_axis_rules(rules):
    yield


def decoding_rules(rules):
  """`rules` for decoding: rows replicated (a batch of one prompt splits over nothing),
  parameters and the KV cache's key/value heads laid out as in training."""
  return tuple((name, None if name == "activation_batch" else axes) for name, axes in rules)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over data × fsdp; the rest replicated."""
  return NamedSharding(mesh, PartitionSpec(BATCH_AXES))


def stacked_batch_sharding(mesh: Mesh) -> NamedSharding:
  """[k, B, ...]: the batches of k steps, each split over data × fsdp along B."""
  return NamedSharding(mesh, PartitionSpec(None, BATCH_AXES))


def logical_shardings(boxed_tree, mesh: Mesh, rules):
  """Shardings for a tree of `nn.LogicallyPartitioned` values (or their shapes)."""
  specs = nn.get_partition_spec(boxed_tree)
  return nn.logical_to_mesh_sharding(specs, mesh, rules)


def check_divisible(shapes: dict, shardings: dict) -> None:
  """ConfigError naming the mesh axis when a sharded dimension does not split evenly.

  shapes and shardings: {path: array shape} and {path: NamedSharding} of parameters.
  """
  for path, leaf in shapes.items():
    sharding = shardings[path]
    for size, axes in zip(leaf.shape, sharding.spec):
      names = (axes,) if isinstance(axes, str) else tuple(axes or ())
      ways = math.prod(sharding.mesh.shape[a] for a in names)
      if size % ways:
        field = "mesh.tensor_axis_size" if TENSOR_AXIS in names else "mesh.fsdp_axis_size"
        raise ConfigError(field, f"{path} has a dimension of {size}, which does not split "
                          f"over {' x '.join(names)} = {ways} devices")


def put_batch(batch: dict, mesh: Mesh, stacked: bool = False) -> dict:
  """Host numpy rows of this process -> global jax.Arrays sharded over data × fsdp.

  stacked: leaves are [k, B/P, ...] (k steps' batches) rather than [B/P, ...].
  """
  sharding = stacked_batch_sharding(mesh) if stacked else batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}
