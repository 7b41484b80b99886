"""Writes shakespeare_cloze.jsonl: a local multiple-choice task for lm-evaluation-harness.

Each item is a line of Tiny Shakespeare's held-out tail (the last 10% of the text, which
configs/clm.py's models validate on and never train on) without its last word, after its
speaker's name; the choices are that word and three last words of other lines, in a
seeded order. Rerun to regenerate: python experiments/lm_eval_tasks/make_shakespeare_cloze.py
"""

import gzip
import json
import os
import random
import re

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, os.pardir, "data", "tinyshakespeare.txt.gz")
OUTPUT = os.path.join(HERE, "shakespeare_cloze.jsonl")
ITEMS, SEED, HELD_OUT = 200, 331, 0.1
WORD = re.compile(r"^(.*\S)\s+([A-Za-z]{4,})[,.;:!?]?$")


def main() -> None:
  with gzip.open(SOURCE, "rt", encoding="utf-8") as f:
    text = f.read()
  tail = text[int(len(text) * (1 - HELD_OUT)):]
  items, speaker = [], None
  for line in tail.split("\n")[1:]:  # The first line may start mid-line.
    if line.endswith(":") and line[:-1].replace(" ", "").isalpha():
      speaker = line
      continue
    match = WORD.match(line)
    if speaker and match and len(line.split()) >= 6:
      items.append((f"{speaker}\n{match.group(1)}", match.group(2)))
  rng = random.Random(SEED)
  chosen = rng.sample(items, ITEMS)
  words = sorted({word for _, word in items})
  with open(OUTPUT, "w", encoding="utf-8") as f:
    for context, word in chosen:
      choices = [word] + rng.sample([w for w in words if w.lower() != word.lower()], 3)
      rng.shuffle(choices)
      f.write(json.dumps({"context": context, "choices": choices,
                          "answer": choices.index(word)}, ensure_ascii=False) + "\n")
  print(f"wrote {len(chosen)} items of {len(items)} to {OUTPUT}")


if __name__ == "__main__":
  main()
