"""Runs the UCI sentiment results table: every method, three seeds, one process per run.

  python experiments/finetuning/sentiment_table.py               # all rows
  python experiments/finetuning/sentiment_table.py --rows=bert-lora,gpt-full --seeds=1
  python experiments/finetuning/sentiment_table.py --rows=scratch --variant=mean \
      --config.model.classifier_pooling=mean       # a recipe change, as row scratch/mean

Needs the WikiText-2 bases (runs/mlm-wikitext, runs/clm-wikitext; see the README's
Fine-tuning section). Each run trains `configs/classify.py` in runs/sentiment/<row>-s<seed>
with launch.py, then `--mode=eval` reports its test accuracy. The table gives, per row,
the mean ± std over seeds of test accuracy, macro F1 and validation accuracy, the
trainable parameters, the checkpoint's bytes and the training time (the whole `launch.py`
command, the fastest seed's), measured here.
The bag-of-words row comes from experiments/baselines/bag_of_words.py.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# row -> (preset, flags). Full fine-tuning runs at the preset's learning rate; the
# methods that train few parameters set larger ones (as their papers use).
ROWS = {
    "scratch": ("scratch", ["--config.train.num_steps=1200"]),
    "bert-head": ("default", ["--config.finetune.method=head",
                              "--config.train.learning_rate=2e-3"]),
    "bert-full": ("default", ["--config.finetune.method=full"]),  # The preset's rate.
    "bert-lora": ("default", ["--config.finetune.method=lora",
                              "--config.train.learning_rate=1e-3"]),
    "bert-prefix": ("default", ["--config.finetune.method=prefix",
                                "--config.train.learning_rate=3e-3"]),
    "bert-prompt": ("default", ["--config.finetune.method=prompt",
                                "--config.train.learning_rate=3e-3"]),
    "gpt-full": ("gpt", ["--config.finetune.method=full"]),  # The preset's rate.
    "gpt-lora": ("gpt", ["--config.finetune.method=lora", "--config.train.learning_rate=1e-3",
                         "--config.train.end_learning_rate=1e-5"]),
    "gpt-prefix": ("gpt", ["--config.finetune.method=prefix", "--config.train.learning_rate=3e-3",
                           "--config.train.end_learning_rate=1e-5"]),
}


def run(row: str, seed: int, extra: list[str], workdir: str = "") -> dict:
  """Trains one row's seed in `workdir` (default runs/sentiment/<row>-s<seed>), then
  evaluates it: its metrics, trainable parameters, checkpoint bytes and seconds."""
  preset, flags = ROWS[row]
  workdir = workdir or os.path.join("runs", "sentiment", f"{row}-s{seed}")
  command = [sys.executable, "launch.py", f"--config=configs/classify.py:{preset}",
             f"--workdir={workdir}", f"--config.train.seed={seed}", *flags, *extra]
  start = time.perf_counter()
  trained = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
  seconds = time.perf_counter() - start
  if trained.returncode:
    raise SystemExit(f"{row} seed {seed} failed: {trained.stderr.strip().splitlines()[-1]}")
  evaluated = subprocess.run(command + ["--mode=eval"], cwd=ROOT, capture_output=True,
                             text=True, check=True)
  metrics = {k: float(v) for k, v in re.findall(r"(test_\w+|eval_\w+) ([\d.]+)",
                                                 evaluated.stdout)}
  trainable = re.search(r"trainable parameters: ([\d,]+) of ([\d,]+)", trained.stderr)
  checkpoints = os.path.join(ROOT, workdir, "checkpoints")
  size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(checkpoints)
             for f in files)
  return {"row": row, "seed": seed, "seconds": seconds, "checkpoint_bytes": size,
          "trainable": int(trainable.group(1).replace(",", "")),
          "parameters": int(trainable.group(2).replace(",", "")), **metrics}


def run_name(row: str, variant: str) -> str:
  """The row as reported: <row>, or <row>/<variant> for a recipe change (--variant)."""
  return f"{row}/{variant}" if variant else row


def mean_std(values: list[float]) -> str:
  if len(values) == 1:
    return f"{values[0]:.3f}"
  return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
  parser = argparse.ArgumentParser(
      description=__doc__.splitlines()[0],
      epilog="Other flags (--config.*) are passed on to every launch.py run, e.g. "
      "--config.data.data_dir=../shared/data.")
  parser.add_argument("--rows", default=",".join(ROWS))
  parser.add_argument("--seeds", default="1,2,3")
  parser.add_argument("--variant", default="",
                      help="names a change the extra flags make: rows are reported as "
                      "<row>/<variant>, trained in runs/sentiment/<row>-<variant>-s<seed>")
  parser.add_argument("--results", default="runs/sentiment/results.jsonl")
  parser.add_argument("--table_only", action="store_true",
                      help="print the table of the runs already in --results; train nothing")
  args, extra = parser.parse_known_args()
  path = os.path.join(ROOT, args.results)
  if args.table_only:
    if not os.path.exists(path):
      raise SystemExit(f"error: no results in {args.results} yet; run the table without "
                       "--table_only first")
    with open(path, encoding="utf-8") as f:
      results = [json.loads(line) for line in f]
    rows = args.rows.split(",")
    base = lambda r: r["row"].split("/")[0]  # A variant's row sits under its row.
    results = sorted((r for r in results if base(r) in rows),
                     key=lambda r: (rows.index(base(r)), r["row"]))
  else:
    results = []
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for row in args.rows.split(","):
      for seed in map(int, args.seeds.split(",")):
        name = run_name(row, args.variant)
        workdir = os.path.join("runs", "sentiment", f"{name.replace('/', '-')}-s{seed}")
        result = dict(run(row, seed, extra, workdir), row=name)
        results.append(result)
        with open(path, "a", encoding="utf-8") as f:
          f.write(json.dumps(result) + "\n")
        print(json.dumps(result), flush=True)
  # Time: the fastest seed's whole command (the machine may have been shared for others).
  print("\n| row | test accuracy | test macro F1 | validation accuracy | trainable parameters | "
        "checkpoint | time (fastest seed) |")
  print("| --- | --- | --- | --- | --- | --- | --- |")
  for row in dict.fromkeys(r["row"] for r in results):
    rs = [r for r in results if r["row"] == row]
    share = rs[0]["trainable"] / rs[0]["parameters"]
    print(f"| {row} | {mean_std([r['test_accuracy'] for r in rs])} | "
          f"{mean_std([r['test_macro_f1'] for r in rs])} | "
          f"{mean_std([r['eval_accuracy'] for r in rs])} | {rs[0]['trainable']:,} "
          f"({share:.2%}) | {statistics.mean(r['checkpoint_bytes'] for r in rs) / 2**20:.2f} MiB"
          f" | {min(r['seconds'] for r in rs):.0f} s |")


if __name__ == "__main__":
  main()
