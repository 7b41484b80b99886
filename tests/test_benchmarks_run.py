"""The GPU throughput benchmark's code runs on CPU too (with a tiny shape), so it is tested
wherever the suite runs; its figures come from accelerators (experiments/README.md)."""

import os
import re
import subprocess
import sys

import pytest

from conftest import REPO, TEST_XLA_FLAGS


@pytest.mark.slow  # A long run: the benchmark's whole program.
def test_gpu_throughput_benchmark_runs_on_cpu():
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count=1 {TEST_XLA_FLAGS}")
  result = subprocess.run([sys.executable, "experiments/benchmarks/gpu_throughput.py",
                           "--shape=tiny", "--num_steps=2", "--microbatches=2"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert re.search(r"tokens/s, MFU \d+\.\d%", result.stdout), result.stdout
  assert "attention fused, bfloat16" in result.stdout
