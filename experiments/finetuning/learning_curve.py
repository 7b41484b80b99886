"""The low-resource learning curve on UCI sentiment: accuracy against labelled sentences.

  python experiments/finetuning/learning_curve.py --config.data.data_dir=../shared/data
  python experiments/finetuning/learning_curve.py --plot_only     # table and picture again
  python experiments/finetuning/learning_curve.py --rows=gpt-full --variant=lr3e-4 \
      --config.train.learning_rate=3e-4 ...      # a recipe change, as row gpt-full/lr3e-4

Trains scratch, the GPT base fully fine-tuned and the GPT base with LoRA (the rows of
sentiment_table.py, with their learning rates) on 100, 300, 1,000 and all 2,381 training
sentences (`data.train_examples`: a stratified subset fixed by `data.subset_seed`, each
inside the next larger one; validation and test unchanged), three seeds each, in
runs/learning_curve/<row>-n<size>-s<seed> (<row>-<variant>-n<size>-s<seed> with --variant).
A subset trains for its row's steps scaled by its share of the training split, at least
--min_steps (150: 48 epochs of 100 sentences).
Prints mean ± std of test accuracy per row and size and draws them against the training
size (log x) into --picture. Needs the GPT base (runs/clm-wikitext); scratch needs none.
"""

import argparse
import collections
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sentiment_table  # pylint: disable=wrong-import-position
from sentiment_table import run_name  # pylint: disable=wrong-import-position

ROOT = sentiment_table.ROOT
ROWS = ("scratch", "gpt-full", "gpt-lora")
SIZES = (100, 300, 1000, 0)  # 0: the whole training split.
TRAIN_SENTENCES = 2381
ROW_STEPS = {"scratch": 1200, "gpt-full": 600, "gpt-lora": 600}  # The table's own steps.


def steps(row: str, size: int, min_steps: int) -> int:
  """The row's steps, scaled by the subset's share of the training split."""
  if size == 0:
    return ROW_STEPS[row]
  return max(min_steps, round(ROW_STEPS[row] * size / TRAIN_SENTENCES))


def workdir(name: str, size: int, seed: int) -> str:
  """Where run_name's run of `size` sentences and `seed` trains."""
  return os.path.join("runs", "learning_curve", f"{name.replace('/', '-')}-n{size}-s{seed}")


def summary(results: list[dict]) -> dict[tuple[str, int], list[float]]:
  """{(row, size): [test accuracy of each seed]}, sizes 0 read as the whole split."""
  curves = collections.defaultdict(list)
  for r in results:
    curves[(r["row"], r["size"] or TRAIN_SENTENCES)].append(r["test_accuracy"])
  return curves


def draw(curves: dict[tuple[str, int], list[float]], path: str, baseline: float) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  figure, axes = plt.subplots(figsize=(6, 4), dpi=120)
  for row in dict.fromkeys(row for row, _ in curves):
    sizes = sorted(size for other, size in curves if other == row)
    means = [statistics.mean(curves[(row, s)]) for s in sizes]
    stds = [statistics.stdev(curves[(row, s)]) if len(curves[(row, s)]) > 1 else 0.0
            for s in sizes]
    axes.errorbar(sizes, means, yerr=stds, marker="o", capsize=3, label=row)
  if baseline:
    axes.axhline(baseline, color="gray", linestyle="--",
                 label=f"bag-of-words, all sentences ({baseline:.3f})")
  axes.axhline(0.5, color="lightgray", linestyle=":", label="chance")
  axes.set_xscale("log")
  ticks = sorted({size for _, size in curves})
  axes.set_xticks(ticks, [f"{size:,}" for size in ticks])
  axes.minorticks_off()
  axes.set_xlabel("labelled training sentences")
  axes.set_ylabel("test accuracy (mean ± std over seeds)")
  axes.set_title("UCI sentiment: accuracy against training size")
  axes.legend(fontsize=8)
  axes.grid(alpha=0.3)
  figure.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  figure.savefig(path)


def main() -> None:
  parser = argparse.ArgumentParser(
      description=__doc__.splitlines()[0],
      epilog="Other flags (--config.*) are passed on to every launch.py run.")
  parser.add_argument("--rows", default=",".join(ROWS))
  parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                      help="training sentences per run; 0 is the whole split")
  parser.add_argument("--seeds", default="1,2,3")
  parser.add_argument("--min_steps", type=int, default=150)
  parser.add_argument("--variant", default="",
                      help="names a change the extra flags make: rows are reported as "
                      "<row>/<variant>, trained in runs/learning_curve/<row>-<variant>-n<size>-"
                      "s<seed>")
  parser.add_argument("--results", default="runs/learning_curve/results.jsonl")
  parser.add_argument("--picture", default="experiments/results/learning_curve.png")
  parser.add_argument("--baseline", type=float, default=0.829,
                      help="the bag-of-words test accuracy on every sentence, drawn as a line")
  parser.add_argument("--plot_only", action="store_true",
                      help="print and draw the runs already in --results; train nothing")
  args, extra = parser.parse_known_args()
  path = os.path.join(ROOT, args.results)
  results = []
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      results = [json.loads(line) for line in f]
  if args.plot_only and not results:
    raise SystemExit(f"error: no results in {args.results} yet; run the curve without "
                     "--plot_only first")
  if not args.plot_only:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    done = {(r["row"], r["size"], r["seed"]) for r in results}
    for size in map(int, args.sizes.split(",")):
      for row in args.rows.split(","):
        name = run_name(row, args.variant)
        for seed in map(int, args.seeds.split(",")):
          if (name, size, seed) in done:
            continue
          flags = [f"--config.data.train_examples={size}",
                   f"--config.train.num_steps={steps(row, size, args.min_steps)}"]
          result = dict(sentiment_table.run(row, seed, extra + flags,
                                            workdir(name, size, seed)), row=name, size=size)
          results.append(result)
          with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")
          print(json.dumps(result), flush=True)
  curves = summary(results)
  sizes = sorted({size for _, size in curves})
  print("\n| row | " + " | ".join(f"{s:,} sentences" for s in sizes) + " |")
  print("| --- |" + " --- |" * len(sizes))
  for row in dict.fromkeys(row for row, _ in curves):
    cells = [sentiment_table.mean_std(curves[(row, s)]) if (row, s) in curves else ""
             for s in sizes]
    print(f"| {row} | " + " | ".join(cells) + " |")
  draw(curves, os.path.join(ROOT, args.picture), args.baseline)
  print(f"\npicture: {args.picture}")


if __name__ == "__main__":
  main()
