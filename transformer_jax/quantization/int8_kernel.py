"""The int8 matmul CPU kernel (int8_matmul.cc, this package's own file) behind `jax.ffi`.

Built on first use with the system's C++ compiler (`$CXX`, else g++) against jaxlib's FFI
headers, with -O3 -march=native -fopenmp, into ~/.cache/transformer_jax (or
$TRANSFORMER_JAX_CACHE), keyed by the source, the jax version and the CPU's flags; later
processes load the built library. Where it cannot be built or used (no compiler, not a
single CPU device, another dtype), `available()` is False, the log says why once, and
`int8.int8_dot` keeps XLA's own formulation: the two agree to float rounding
(tests/test_int8_kernel.py). TRANSFORMER_JAX_INT8_KERNEL=0 turns it off.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from typing import Optional

import jax
import jax.numpy as jnp
from absl import logging

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "int8_matmul.cc")
TARGETS = {"transformer_jax_int8_matmul": "TransformerJaxInt8Matmul",  # w [in, out]
           "transformer_jax_int8_matmul_rows": "TransformerJaxInt8MatmulRows"}  # w [out, in]
_enabled = os.environ.get("TRANSFORMER_JAX_INT8_KERNEL", "1") != "0"


def set_enabled(enabled: bool) -> None:
  """Chooses the kernel (True) or XLA's formulation for computations traced from now on."""
  global _enabled  # pylint: disable=global-statement
  _enabled = enabled


def _cpu_flags() -> str:
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      return next((line for line in f if line.startswith("flags")), "")
  except OSError:
    return ""


def library_path() -> str:
  with open(SOURCE, "rb") as f:
    key = hashlib.sha256(f.read() + jax.__version__.encode() + _cpu_flags().encode())
  cache = os.environ.get("TRANSFORMER_JAX_CACHE",
                         os.path.join(os.path.expanduser("~"), ".cache", "transformer_jax"))
  return os.path.join(cache, f"int8_matmul_{key.hexdigest()[:16]}.so")


def build() -> tuple[Optional[str], str]:
  """(the built library's path, '') or (None, why not)."""
  path = library_path()
  if os.path.exists(path):
    return path, ""
  compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
  if compiler is None:
    return None, "no C++ compiler (set CXX or install g++)"
  os.makedirs(os.path.dirname(path), exist_ok=True)
  handle, temporary = tempfile.mkstemp(suffix=".so", dir=os.path.dirname(path))
  os.close(handle)
  command = [compiler, "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c++17",
             "-w", f"-I{jax.ffi.include_dir()}", SOURCE, "-o", temporary]
  result = subprocess.run(command, capture_output=True, text=True, check=False)
  if result.returncode:
    os.remove(temporary)
    return None, f"{os.path.basename(compiler)} failed: {' '.join(result.stderr.split())[:300]}"
  os.replace(temporary, path)  # Atomic: a concurrent build leaves one complete library.
  return path, ""


@functools.cache
def _registered() -> tuple[bool, str]:
  path, reason = build()
  if path is None:
    return False, reason
  # OpenMP threads that spin while they wait stall when the cores are busy (XLA's own
  # threads, another process): the library's OpenMP runtime starts with passive waits,
  # read from the environment when it loads, unless the user chose a policy.
  previous = os.environ.get("OMP_WAIT_POLICY")
  os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
  try:
    library = ctypes.cdll.LoadLibrary(path)
  finally:
    if previous is None:
      del os.environ["OMP_WAIT_POLICY"]
  for target, symbol in TARGETS.items():
    jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(library, symbol)),
                                platform="cpu")
  return True, ""


_WARNED: set[str] = set()


def available(dtype) -> bool:
  """Whether `matmul` serves a product in `dtype` here (see the module docstring)."""
  if not _enabled:
    return False
  reason = ""
  if jnp.dtype(dtype) != jnp.float32:
    return False  # bfloat16 computations keep XLA's path.
  if jax.default_backend() != "cpu" or jax.device_count() != 1:
    reason = "the kernel serves one CPU device"
  else:
    ok, reason = _registered()
    if ok:
      return True
  if reason not in _WARNED:
    _WARNED.add(reason)
    logging.info("int8 matmuls use XLA's formulation: %s", reason)
  return False


def matmul(x: jax.Array, values: jax.Array, scale: jax.Array,
           rows: bool = False) -> jax.Array:
  """x [N, in] float32 · values int8 [in, out] · scale [out] -> [N, out] float32.
  rows: values are [out, in] (the embedding table), each row an output channel."""
  ok, reason = _registered()
  if not ok:
    raise RuntimeError(f"the int8 kernel is not available: {reason}")
  target = "transformer_jax_int8_matmul_rows" if rows else "transformer_jax_int8_matmul"
  out = values.shape[0] if rows else values.shape[1]
  call = jax.ffi.ffi_call(target, jax.ShapeDtypeStruct((x.shape[0], out), jnp.float32))
  return call(x.astype(jnp.float32), values, scale.astype(jnp.float32))
