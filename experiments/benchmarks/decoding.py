"""Times greedy KV-cached decoding of a GPT-2-small-shaped model: floors, Hugging Face, int8.

  python experiments/benchmarks/decoding.py                  # batches 1 and 16, float32
  python experiments/benchmarks/decoding.py --dtype=bfloat16 --batch_sizes=1
  python experiments/benchmarks/decoding.py --int8           # + model.quantize=int8 rows

--int8 adds, in the same run, the same decode with int8 weights (`quantization/int8.py`,
quantised from the same random float32 weights): once through the C++ kernel behind
jax.ffi (`int8_kernel`) and once through XLA's own formulation (`xla_int8_dot`,
--int8_xla_batch_sizes only: it is slow), with their ratios to our float32 rows and to
Hugging Face's float32 generate, and the parameter bytes a step streams per token.

Why: on a CPU, one decoding step at batch 1 multiplies a single row by every
weight matrix, so it is bound by memory bandwidth, not arithmetic: each step must
stream all parameter bytes from memory at least once. The memory floor of a step
is therefore parameter bytes / copy bandwidth, with the bandwidth measured in the
same process (bytes read + written by a jitted in-place `x + 1` over a float32
array far larger than the caches). That floor counts written bytes too; the
bandwidth of a read-only stream (a jitted sum over the same array) is printed
beside it, as reads alone may stream slower. At batch 16 the same bytes serve 16
rows, and a step's floor is the larger of the memory floor and the compute floor
(2 · parameters · batch FLOPs at the measured float32 matmul peak).

The model is `configs/clm.py:gpt2`'s model section (12 layers, 768 wide, 12 heads,
context 1024, 50,257 tokens, biases, tied output projection) with random weights,
so nothing is downloaded. Decoding is `model_steps.generate` with `samplers.greedy`,
one `jax.jit` per (batch, prompt length, new tokens), timed after a warm-up call
(median of --repeats). The prefill (`model_steps.decoder_prefill`, jitted alone) is
timed separately. The loop makes new_tokens - 1 model steps (the first new token
comes from the prefill's logits), so a step's latency is
(whole generate - prefill) / (new_tokens - 1); tokens/s counts every new token of
every row over the whole call, prefill included.

When `torch` and `transformers` are importable (an optional extra, never a library
dependency: `pip install torch transformers`), the same run times Hugging Face's
`GPT2LMHeadModel.generate` (greedy, KV cache, random weights, the same batch sizes,
prompt length and new tokens, torch.set_num_threads(os.cpu_count())) and prints
ours / theirs. Time on an idle machine: torch's OpenMP threads spin while they
wait, so with another job on the cores its steps slow down by 10x and more,
far more than ours, and the ratio means nothing. The printed matmul peak is the
health check: about 190 GFLOP/s on the 2-core development machine; half that means
a core was busy elsewhere and the run is not a figure.

CPU threading: JAX runs on one CPU device (its default), whose large ops are split
over every core by XLA's intra-op thread pool; torch gets the same number of
threads. The multi-device setting that speeds up training (one single-threaded
device per core, experiments/README.md) does not apply: a batch-1 decode has no
batch to split.
"""

import argparse
import dataclasses
import functools
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import flax.linen as nn  # pylint: disable=wrong-import-position
import jax  # pylint: disable=wrong-import-position
import jax.numpy as jnp  # pylint: disable=wrong-import-position

from configs import clm  # pylint: disable=wrong-import-position
from transformer_jax.config_sections import ModelConfig  # pylint: disable=wrong-import-position
from transformer_jax.decoding import model_steps, samplers  # pylint: disable=wrong-import-position
from transformer_jax.models.decoder import Decoder  # pylint: disable=wrong-import-position
from transformer_jax.quantization import int8, int8_kernel  # pylint: disable=wrong-import-position

GPT2_VOCAB_SIZE = 50257
INSTALL_HINT = ("to compare, install them beside this package, e.g. in a separate virtual "
                "environment: pip install -e . torch transformers (a CPU-only torch wheel is "
                "far smaller than the default CUDA build)")


def median_seconds(function, repeats: int) -> float:
  """Median wall time of `function()` over repeats calls; the caller has warmed it up."""
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    function()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def measure_copy_bandwidth(mebibytes: int = 512, repeats: int = 5) -> float:
  """Bytes/s of a jitted in-place x + 1 over a float32 array: read + written bytes / time."""
  x = jnp.zeros((mebibytes * 2**20 // 4,), jnp.float32)
  add_one = jax.jit(lambda x: x + 1, donate_argnums=0)
  x = add_one(x).block_until_ready()  # Compile, and touch every page once.
  holder = [x]

  def step():
    holder[0] = add_one(holder[0]).block_until_ready()

  return 2 * x.nbytes / median_seconds(step, repeats)


def measure_read_bandwidth(mebibytes: int = 512, repeats: int = 5) -> float:
  """Bytes/s of a jitted sum over a float32 array: a read-only stream, as a step's weights."""
  x = jnp.ones((mebibytes * 2**20 // 4,), jnp.float32)
  total = jax.jit(jnp.sum)
  total(x).block_until_ready()
  return x.nbytes / median_seconds(lambda: total(x).block_until_ready(), repeats)


def measure_matmul_peak(size: int = 2048, repeats: int = 5) -> float:
  """FLOP/s of one float32 [size, size] matmul on the default device."""
  a = jnp.ones((size, size), jnp.float32) / size
  matmul = jax.jit(lambda a: a @ a)
  matmul(a).block_until_ready()
  return 2 * size**3 / median_seconds(lambda: matmul(a).block_until_ready(), repeats)


def gpt2_model_config(dtype: str) -> ModelConfig:
  """configs/clm.py:gpt2's model section with GPT-2's vocabulary; dropout is off in decoding."""
  fields = clm.get_config("gpt2").model.to_dict()
  return dataclasses.replace(ModelConfig(**fields), vocab_size=GPT2_VOCAB_SIZE, dtype=dtype)


def init_params(model: Decoder, dtype: str):
  """Random GPT-2 parameters, unboxed; cast to `dtype` so a step reads that many bytes."""
  example = jnp.zeros((1, 8), jnp.int32)
  params = jax.jit(lambda key: nn.unbox(model.init(key, example, deterministic=True)["params"]))(
      jax.random.key(0))
  return jax.tree_util.tree_map(lambda x: x.astype(dtype), params)


def time_ours(model: Decoder, params, batch: int, prompt_length: int, new_tokens: int,
              repeats: int) -> dict:
  """Seconds for the whole greedy generate and for the prefill alone (medians)."""
  prompts = jax.random.randint(jax.random.key(batch), (batch, prompt_length), 0,
                               model.config.vocab_size, jnp.int32)
  lengths = jnp.full((batch,), prompt_length, jnp.int32)
  key = jax.random.key(0)
  generate = jax.jit(functools.partial(model_steps.generate, model, sampler=samplers.greedy,
                                       max_new_tokens=new_tokens))
  prefill = jax.jit(functools.partial(model_steps.decoder_prefill, model,
                                      cache_length=prompt_length + new_tokens - 1))
  run_generate = lambda: jax.block_until_ready(generate(params, prompts, lengths, key=key))
  run_prefill = lambda: jax.block_until_ready(prefill(params, prompts, lengths))
  tokens, emitted = run_generate()  # Compile and warm up.
  assert int(emitted.min()) == new_tokens, "greedy decoding stopped early"
  del tokens
  run_prefill()
  return {"generate": median_seconds(run_generate, repeats),
          "prefill": median_seconds(run_prefill, repeats)}


def cpu_name() -> str:
  """lscpu's model name (e.g. 'AMD EPYC 9B14'), with the vector extensions that matter."""
  name = "unknown CPU"
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      text = f.read()
    name = next(line.split(":", 1)[1].strip() for line in text.splitlines()
                if line.startswith("model name"))
    flags = next(line for line in text.splitlines() if line.startswith("flags")).split()
    extensions = [e for e in ("avx2", "avx512f", "avx512_vnni", "amx_tile") if e in flags]
    name += f" ({', '.join(extensions)})"
  except (OSError, StopIteration):
    pass
  return name


def time_int8(model: Decoder, params, batch_sizes, args, use_kernel: bool):
  """{batch: seconds} of the int8 decode, and its parameter bytes."""
  int8_kernel.set_enabled(use_kernel)
  try:
    wrapped = int8.Int8Model(model, [jnp.zeros((1, 8), jnp.int32)])
    quantized = jax.block_until_ready(wrapped.quantize(params))
    if use_kernel and not int8_kernel.available(jnp.float32):
      return None, 0
    times = {b: time_ours(wrapped, quantized, b, args.prompt_length, args.new_tokens,
                          args.repeats) for b in batch_sizes}
    return times, int8.tree_bytes(quantized)
  finally:
    int8_kernel.set_enabled(True)


def time_hugging_face(batch_sizes, prompt_length: int, new_tokens: int, repeats: int,
                      dtype: str):
  """{batch: {'generate', 'prefill'} seconds} for transformers' GPT-2, or None if not installed."""
  try:
    import torch  # pylint: disable=import-outside-toplevel
    import transformers  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  torch.set_num_threads(os.cpu_count())
  torch.manual_seed(0)
  config = transformers.GPT2Config(n_layer=12, n_embd=768, n_head=12, n_positions=1024,
                                   vocab_size=GPT2_VOCAB_SIZE)
  model = transformers.GPT2LMHeadModel(config).eval().to(getattr(torch, dtype))
  results = {"versions": f"torch {torch.__version__}, transformers {transformers.__version__}"}
  with torch.inference_mode():
    for batch in batch_sizes:
      input_ids = torch.randint(0, GPT2_VOCAB_SIZE, (batch, prompt_length))
      attention_mask = torch.ones_like(input_ids)

      def run_generate():
        return model.generate(input_ids, attention_mask=attention_mask,
                              max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                              do_sample=False, use_cache=True, pad_token_id=0)

      def run_prefill():
        return model(input_ids, attention_mask=attention_mask, use_cache=True)

      output = run_generate()  # Warm up.
      assert output.shape == (batch, prompt_length + new_tokens), output.shape
      run_prefill()
      results[batch] = {"generate": median_seconds(run_generate, repeats),
                        "prefill": median_seconds(run_prefill, repeats)}
  return results


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch_sizes", default="1,16", help="comma-separated batch sizes")
  parser.add_argument("--prompt_length", type=int, default=32)
  parser.add_argument("--new_tokens", type=int, default=64)
  parser.add_argument("--repeats", type=int, default=3, help="timed calls; the median is reported")
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                      help="parameters, activations and KV cache (Hugging Face too)")
  parser.add_argument("--skip_hugging_face", action="store_true")
  parser.add_argument("--int8", action="store_true", help="also time model.quantize=int8")
  parser.add_argument("--int8_xla_batch_sizes", default="1",
                      help="batch sizes for the int8 rows through XLA's formulation ('' none)")
  args = parser.parse_args()
  if args.new_tokens < 2:
    parser.error("--new_tokens must be >= 2: a step's latency needs at least one loop step")
  batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

  model = Decoder(gpt2_model_config(args.dtype))
  params = init_params(model, args.dtype)
  num_params = sum(x.size for x in jax.tree_util.tree_leaves(params))
  param_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(params))
  bandwidth = measure_copy_bandwidth()
  read_bandwidth = measure_read_bandwidth()
  peak = measure_matmul_peak()
  memory_floor = param_bytes / bandwidth

  ours = {b: time_ours(model, params, b, args.prompt_length, args.new_tokens, args.repeats)
          for b in batch_sizes}
  int8_rows = {}
  if args.int8:
    if args.dtype != "float32":
      parser.error("--int8 compares with float32 (--dtype=float32)")
    int8_rows["int8 kernel"] = time_int8(model, params, batch_sizes, args, use_kernel=True)
    xla_batches = [int(b) for b in args.int8_xla_batch_sizes.split(",") if b]
    if xla_batches:
      int8_rows["int8 XLA"] = time_int8(model, params, xla_batches, args, use_kernel=False)
  theirs = None
  if not args.skip_hugging_face:
    theirs = time_hugging_face(batch_sizes, args.prompt_length, args.new_tokens, args.repeats,
                               args.dtype)

  steps = args.new_tokens - 1
  print(f"CPU: {cpu_name()}")
  print(f"greedy decoding, configs/clm.py:gpt2 shape, {num_params:,} parameters "
        f"({param_bytes / 2**20:,.0f} MiB {args.dtype}), prompt {args.prompt_length}, "
        f"{args.new_tokens} new tokens, median of {args.repeats}; jax {jax.__version__}, "
        f"{jax.device_count()} {jax.default_backend()} device, {os.cpu_count()} CPUs")
  print(f"copy bandwidth {bandwidth / 1e9:.1f} GB/s -> memory floor {1000 * memory_floor:.1f} "
        f"ms/step (a read-only sum streams {read_bandwidth / 1e9:.1f} GB/s: "
        f"{1000 * param_bytes / read_bandwidth:.1f} ms); "
        f"float32 matmul peak {peak / 1e9:.0f} GFLOP/s")
  header = (f"{'batch':>5} {'prefill ms':>10} {'ms/step':>8} {'tokens/s':>9} {'floor ms':>8} "
            f"{'vs floor':>8}")
  if theirs is not None:
    header += f" {'HF prefill':>10} {'HF ms/step':>10} {'HF tok/s':>9} {'vs HF':>6}"
  print(header)
  for batch in batch_sizes:
    r = ours[batch]
    step = (r["generate"] - r["prefill"]) / steps
    tokens_per_second = batch * args.new_tokens / r["generate"]
    # A step is bound by the slower of streaming the weights and doing its arithmetic.
    floor = max(memory_floor, 2 * num_params * batch / peak)
    line = (f"{batch:>5} {1000 * r['prefill']:10.1f} {1000 * step:8.2f} {tokens_per_second:9,.1f} "
            f"{1000 * floor:8.2f} {step / floor:7.2f}x")
    if theirs is not None:
      h = theirs[batch]
      hf_step = (h["generate"] - h["prefill"]) / steps
      hf_tokens_per_second = batch * args.new_tokens / h["generate"]
      line += (f" {1000 * h['prefill']:10.1f} {1000 * hf_step:10.2f} "
               f"{hf_tokens_per_second:9,.1f} {tokens_per_second / hf_tokens_per_second:5.2f}x")
    print(line)
  if 1 in ours:
    r = ours[1]
    step = (r["generate"] - r["prefill"]) / steps
    goal = (f"batch 1: {step / memory_floor:.2f}x the memory floor (goal <= 1.5x), "
            f"{step * read_bandwidth / param_bytes:.2f}x the read-only-stream floor")
    if theirs is not None:
      goal += (f", {theirs[1]['generate'] / r['generate']:.2f}x Hugging Face's tokens/s "
               f"(goal >= 2x)")
    print(goal)
  if int8_rows:
    print(f"{'weights':>12} {'batch':>5} {'ms/step':>8} {'tokens/s':>9} {'MB/token':>8} "
          f"{'vs f32':>7}" + (f" {'vs HF':>6}" if theirs is not None else ""))
    for batch in batch_sizes:
      r = ours[batch]
      step = (r["generate"] - r["prefill"]) / steps
      rows = [("float32", r, param_bytes)]
      for name, (times, nbytes) in int8_rows.items():
        if times is not None and batch in times:
          rows.append((name, times[batch], nbytes))
      for name, times, nbytes in rows:
        step_seconds = (times["generate"] - times["prefill"]) / steps
        tokens_per_second = batch * args.new_tokens / times["generate"]
        line = (f"{name:>12} {batch:>5} {1000 * step_seconds:8.2f} {tokens_per_second:9,.1f} "
                f"{nbytes / batch / 1e6:8.1f} {step / step_seconds:6.2f}x")
        if theirs is not None:
          line += f" {theirs[batch]['generate'] / times['generate']:5.2f}x"
        print(line)
    for name, (times, _) in int8_rows.items():
      if times is None:
        print(f"{name}: not timed (the kernel is not available here; see the log)")
    print("vs f32: our float32 ms/step over this row's; vs HF: this row's tokens/s over "
          "Hugging Face's float32; MB/token: parameter bytes a step reads, per row of the batch")
    if 1 in ours and int8_rows.get("int8 kernel", (None,))[0]:
      r, k = ours[1], int8_rows["int8 kernel"][0][1]
      goal = (f"int8 batch 1: {((r['generate'] - r['prefill']) / (k['generate'] - k['prefill'])):.2f}x "
              "our float32 step (goal >= 1.5x)")
      if theirs is not None:
        goal += f", {theirs[1]['generate'] / k['generate']:.2f}x Hugging Face's tokens/s (goal >= 2x)"
      print(goal)
  print("floor ms: the larger of parameter bytes / copy bandwidth and 2·parameters·batch FLOPs / "
        "matmul peak" + ("; vs HF: our tokens/s over Hugging Face's" if theirs is not None else ""))
  if args.skip_hugging_face:
    print("Hugging Face: skipped (--skip_hugging_face)")
  elif theirs is None:
    print(f"Hugging Face: not timed, torch and transformers are not installed; {INSTALL_HINT}")
  else:
    print(f"Hugging Face: GPT2LMHeadModel.generate, greedy, use_cache, {theirs['versions']}, "
          f"{os.cpu_count()} threads")


if __name__ == "__main__":
  main()
