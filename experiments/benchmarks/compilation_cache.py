"""What the persistent compilation cache saves: one launch.py command, uncached, cold, warm.

  python experiments/benchmarks/compilation_cache.py -- --config=configs/clm.py:baby
  python experiments/benchmarks/compilation_cache.py --runs=off,cold,warm -- --config=configs/clm.py

Runs the command (in a fresh workdir each time) with the cache off
(TRANSFORMER_JAX_COMPILATION_CACHE=0), with an empty cache folder (cold: it compiles and
fills it) and again with that folder (warm), and prints per run the whole command's wall
seconds and the seconds JAX spent compiling (XLA backend compilations, summed through
jax.monitoring), then the warm run's ratios to the uncached one. Same machine, same run:
the ratios, not the seconds, are the figure.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"

# Runs launch.py in this interpreter with a listener that sums compile seconds, and prints
# them as the last line of stderr.
_WRAPPER = f"""
import atexit, json, sys
import jax.monitoring
seconds = [0.0, 0]
def listener(event, duration, **kwargs):
  if event == {COMPILE_EVENT!r}:
    seconds[0] += duration
    seconds[1] += 1
jax.monitoring.register_event_duration_secs_listener(listener)
atexit.register(lambda: print("COMPILE " + json.dumps(seconds), file=sys.stderr, flush=True))
sys.argv = ["launch.py"] + sys.argv[1:]
sys.path.insert(0, {REPO!r})
import runpy
runpy.run_path({os.path.join(REPO, "launch.py")!r}, run_name="__main__")
"""


def run(flags: list[str], workdir: str, cache: str | None) -> dict:
  env = dict(os.environ)
  env.pop("JAX_COMPILATION_CACHE_DIR", None)
  if cache is None:
    env["TRANSFORMER_JAX_COMPILATION_CACHE"] = "0"
  else:
    env["JAX_COMPILATION_CACHE_DIR"] = cache
  start = time.perf_counter()
  completed = subprocess.run([sys.executable, "-c", _WRAPPER, *flags, f"--workdir={workdir}"],
                             cwd=REPO, env=env, capture_output=True, text=True, check=False)
  wall = time.perf_counter() - start
  if completed.returncode:
    sys.exit(f"the command failed: {completed.stderr.strip().splitlines()[-1]}")
  line = [l for l in completed.stderr.splitlines() if l.startswith("COMPILE ")][-1]
  compile_seconds, compilations = json.loads(line[len("COMPILE "):])
  return {"wall_seconds": wall, "compile_seconds": compile_seconds,
          "compilations": compilations}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--runs", default="off,cold,warm",
                      help="Which runs, in order: off, cold, warm (warm needs cold first).")
  parser.add_argument("flags", nargs="+", help="launch.py's flags, after --.")
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as scratch:
    cache = os.path.join(scratch, "cache")
    results = {}
    for name in args.runs.split(","):
      workdir = os.path.join(scratch, f"workdir-{name}")
      results[name] = run(args.flags, workdir, None if name == "off" else cache)
      r = results[name]
      print(f"{name:5} {r['wall_seconds']:8.1f} s whole command, {r['compile_seconds']:7.1f} s "
            f"compiling ({r['compilations']} XLA compilations)", flush=True)
  if "off" in results and "warm" in results:
    off, warm = results["off"], results["warm"]
    print(f"warm / off: whole command {warm['wall_seconds'] / off['wall_seconds']:.2f}x, "
          f"saved {off['wall_seconds'] - warm['wall_seconds']:.1f} s of "
          f"{off['compile_seconds']:.1f} s uncached compile time")


if __name__ == "__main__":
  main()
