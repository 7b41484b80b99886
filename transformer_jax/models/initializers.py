"""GPT-2 initialisation with logical axis names attached to every parameter.

The names ('vocab', 'embed', 'heads', 'head_dim', 'mlp', 'length') are mapped to
mesh axes by `transformer_jax.training.partitioning`; today every parameter is
replicated, and FSDP or tensor parallelism only changes that mapping.
"""

import flax.linen as nn

STDDEV = 0.02


def kernel(names: tuple[str, ...], stddev: float = STDDEV):
  return nn.with_logical_partitioning(nn.initializers.normal(stddev), names)


def bias(names: tuple[str, ...]):
  return nn.with_logical_partitioning(nn.initializers.zeros_init(), names)


def scale(names: tuple[str, ...]):
  return nn.with_logical_partitioning(nn.initializers.ones_init(), names)
