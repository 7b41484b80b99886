"""GPT-2 initialisation with logical axis names attached to every parameter, and the
logical names of the hidden states between blocks.

The names ('vocab', 'embed', 'heads', 'kv_heads', 'head_dim', 'mlp', 'length', ...)
are mapped to mesh axes by `transformer_jax.training.partitioning.LOGICAL_AXIS_RULES`:
data, FSDP or tensor parallelism only changes that mapping, not the model.
"""

import flax.linen as nn
import jax

STDDEV = 0.02


def kernel(names: tuple[str, ...], stddev: float = STDDEV):
  return nn.with_logical_partitioning(nn.initializers.normal(stddev), names)


def bias(names: tuple[str, ...]):
  return nn.with_logical_partitioning(nn.initializers.zeros_init(), names)


def scale(names: tuple[str, ...]):
  return nn.with_logical_partitioning(nn.initializers.ones_init(), names)


HIDDEN_AXES = ("activation_batch", "activation_length", "activation_embed")


def constrain_hidden(x: jax.Array) -> jax.Array:
  """Hidden states [B, T, D] laid out by the axis rules (rows over data x fsdp) at a block
  boundary, so XLA keeps them there rather than gathering what it need not. Outside a
  mesh and rules context (`partitioning.mesh_rules`), nothing happens."""
  return nn.with_logical_constraint(x, HIDDEN_AXES)
