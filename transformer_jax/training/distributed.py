"""Several processes, one run: `jax.distributed` before anything else touches a device.

Every process runs the same command. Given --coordinator_address, --num_processes and
--process_id, the processes meet there; with none of them, a cluster launcher's
environment (Slurm, Open MPI, a multi-host Cloud TPU) is detected and JAX reads the
same from it; otherwise the run is one process. On CPU the processes' collectives go
over TCP (gloo), so several processes on one machine talk over loopback.

Each process then reads only its own rows of every global batch (the data modules
use jax.process_index()), only process 0 writes metrics, logs and files, and all of
them take part in checkpointing (orbax). If a process dies, JAX's coordination
service notices the missing heartbeats within `heartbeat_timeout_seconds`, and the
others stop with one line (see `peer_failure_message`): at once when a collective
they are in fails, as gloo's do when a peer's connection closes.
"""

from __future__ import annotations

import os
from typing import Optional

import jax

from transformer_jax.errors import UserError

# Environment variables by which a cluster launcher announces several processes.
_CLUSTER_VARIABLES = (("SLURM_NTASKS", "Slurm"), ("OMPI_COMM_WORLD_SIZE", "Open MPI"))


def detected_cluster() -> Optional[str]:
  """The name of the cluster launcher that started several processes, or None."""
  for variable, name in _CLUSTER_VARIABLES:
    if int(os.environ.get(variable, "1") or "1") > 1:
      return name
  if "," in os.environ.get("TPU_WORKER_HOSTNAMES", ""):
    return "Cloud TPU"
  return None


def initialize(coordinator_address: Optional[str], num_processes: Optional[int],
               process_id: Optional[int], heartbeat_timeout_seconds: int) -> int:
  """Starts jax.distributed when the flags or the environment ask for it; returns the
  number of processes. Must run before any JAX computation."""
  given = [coordinator_address, num_processes, process_id]
  if all(value is None for value in given):
    cluster = detected_cluster()
    if cluster is None:
      return 1
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(heartbeat_timeout_seconds=heartbeat_timeout_seconds)
    return jax.process_count()
  if any(value is None for value in given):
    raise UserError("--coordinator_address, --num_processes and --process_id go together")
  if not 0 <= process_id < num_processes:
    raise UserError(f"--process_id must be in [0, --num_processes={num_processes}), "
                    f"got {process_id}")
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id,
                             heartbeat_timeout_seconds=heartbeat_timeout_seconds,
                             initialization_timeout=heartbeat_timeout_seconds)
  return num_processes


def peer_failure_message(error: Exception) -> str:
  """One line for a collective that failed because another process died."""
  first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
  return (f"process {jax.process_index()} of {jax.process_count()}: another process died or "
          f"stopped answering ({first}); re-run every process to resume from the last "
          "checkpoint")


def is_main_process() -> bool:
  """Process 0 writes metrics, logs and files; every process checkpoints."""
  return jax.process_index() == 0
