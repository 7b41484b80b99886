"""The int8 matmul kernel (jax.ffi, C++) against XLA's formulation of the same product."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from transformer_jax.quantization import int8, int8_kernel


@pytest.fixture(scope="module")
def kernel():
  path, reason = int8_kernel.build()
  if path is None:
    pytest.skip(f"the kernel cannot be built here: {reason}")
  return path


@pytest.mark.parametrize("rows, fan_in, fan_out", [(1, 96, 320), (3, 64, 64), (17, 40, 200),
                                                   (8, 33, 65)])
def test_the_kernel_equals_xla(kernel, rows, fan_in, fan_out):
  del kernel
  keys = jax.random.split(jax.random.key(rows), 2)
  x = jax.random.normal(keys[0], (rows, fan_in))
  values, scale = int8.quantize_array(jax.random.normal(keys[1], (fan_in, fan_out)), 1)
  assert int8_kernel.available(jnp.float32)
  ours = jax.jit(int8_kernel.matmul)(x, values, scale)
  xla = jax.jit(int8.xla_int8_dot, static_argnums=3)(x, values, scale, jnp.float32)
  np.testing.assert_allclose(ours, xla, rtol=1e-5, atol=1e-5)
  # The float64 product x · q · scale, to float32 rounding.
  exact = (np.asarray(x, np.float64) @ np.asarray(values, np.float64)) * np.asarray(scale)
  np.testing.assert_allclose(ours, exact, rtol=1e-5, atol=1e-5)


def test_the_row_kernel_equals_xla(kernel):
  del kernel
  keys = jax.random.split(jax.random.key(7), 2)
  x = jax.random.normal(keys[0], (5, 48))
  values, scale = int8.quantize_array(jax.random.normal(keys[1], (300, 48)), -1)  # [V, D]
  ours = jax.jit(lambda x, v, s: int8_kernel.matmul(x, v, s, rows=True))(x, values, scale)
  xla = jax.jit(int8.xla_int8_dot, static_argnums=(3, 4))(x, values, scale, jnp.float32, True)
  np.testing.assert_allclose(ours, xla, rtol=1e-5, atol=1e-5)
  assert ours.shape == (5, 300)


def test_it_can_be_turned_off_and_serves_float32_only(kernel):
  del kernel
  assert not int8_kernel.available(jnp.bfloat16)
  int8_kernel.set_enabled(False)
  try:
    assert not int8_kernel.available(jnp.float32)
  finally:
    int8_kernel.set_enabled(True)
