"""What sequence-to-sequence translation needs from `data.*`: pairs, a tokenizer, batches.

A parallel corpus (format tsv or aligned) gives (source, target) pairs. The
encoder reads `source + EOS`; the decoder reads `BOS + target` (teacher forcing)
and predicts `target + EOS`, so it learns where to stop. data.packing=none pads
each pair to a row of model.max_length per side; most pairs are far shorter, so
data.packing=documents packs several pairs side by side into each row, as Flax's
WMT example does: pair k of a row is segment k on both sides, with positions from
0, and the model gives each pair the logits it would give it alone. Training pairs
are packed in an order drawn from train.seed, validation pairs in corpus order.

Pairs are split by their source text, not by line: Tatoeba repeats an English
sentence with several translations, and splitting lines would evaluate the model
on sentences it was trained on. Training drops pairs too long for max_length (a
model should not learn to stop mid-sentence); evaluation cuts them instead, so
every held-out pair is scored. As for a language model, a training batch is a pure
function of (seed, step), so resumes are exact.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Optional, Sequence

import jax
import numpy as np
from absl import logging

from transformer_jax.config_sections import DataConfig, ExperimentConfig
from transformer_jax.data.corpora import cleaning, corpus, sources
from transformer_jax.data.batches import row_batches
from transformer_jax.data.tokenizers import special_tokens
from transformer_jax.data.tokenizers import tokenizer as tokenizer_lib
from transformer_jax.data.tokenizers.tokenizer import Tokenizer
from transformer_jax.errors import DataError

TRANSLATION_SPECIAL_TOKENS = (special_tokens.PAD, special_tokens.BOS, special_tokens.EOS,
                              special_tokens.UNK)
PARALLEL_FORMATS = ("tsv", "aligned")


@dataclasses.dataclass
class TranslationData:
  tokenizer: Tokenizer
  train_batch_at: Callable[[int], dict]  # step -> this process's rows of the batch.
  eval_batches: Callable[[], Iterable[dict]]  # The same batches at every evaluation.
  validation_pairs: list[tuple[str, str]]  # (source, target) texts, e.g. for BLEU.
  test_pairs: list[tuple[str, str]]


def read_pairs(d: DataConfig, experiment: str = "seq2seq") -> list[sources.Document]:
  """The corpus's pairs (`.text` source, `.target` target), each side cleaned.

  Pairs with an empty (or all-whitespace) side after cleaning are dropped.
  """
  where = f"{d.path} and {d.target_path}" if d.format == "aligned" else d.path or d.format
  if d.format not in PARALLEL_FORMATS and not (d.format == "jsonl" and d.target_field):
    raise DataError(f"{experiment} needs a parallel corpus: data.format tsv or aligned, "
                    f"not {d.format!r} ({where})")
  parallel, rules = corpus.read(d), corpus.cleaning_rules(d)
  pairs = []
  for document in parallel.documents:
    pair = dataclasses.replace(document, text=cleaning.clean(document.text, rules),
                               target=cleaning.clean(document.target or "", rules))
    if pair.text.strip() and pair.target.strip():
      pairs.append(pair)
  empty = len(parallel.documents) - len(pairs)
  if empty:
    logging.info("dropped %d of %d pairs of %s with an empty source or target",
                 empty, len(parallel.documents), where)
  if not pairs:
    raise DataError(f"no pair of {where} has both a source and a target")
  return pairs


def read_splits(d: DataConfig, seed: int,
                experiment: str = "seq2seq") -> dict[str, list[sources.Document]]:
  """{train, validation, test: pairs} of data.path (`split_pairs`), data.validation_path and
  data.test_path replacing the split they name."""
  return sources.with_split_files(
      d, read_pairs(d, experiment),
      lambda path: read_pairs(dataclasses.replace(d, path=path), experiment),
      lambda pairs, validation, test: split_pairs(pairs, validation, test, seed))


def split_pairs(pairs: Sequence[sources.Document], validation_fraction: float,
                test_fraction: float, seed: int) -> dict[str, list[sources.Document]]:
  """{train, validation, test: pairs}, each keeping the input order.

  A pair's split is its source text's (through `sources.split_documents`), so a
  source repeated with several targets lands in one split with all of them.
  """
  distinct = list(dict.fromkeys(pair.text for pair in pairs))
  parts = sources.split_documents([sources.Document(text, name=text) for text in distinct],
                                  validation_fraction, test_fraction, seed)
  split_of = {document.name: split for split, documents in parts.items()
              for document in documents}
  return {split: [pair for pair in pairs if split_of[pair.text] == split]
          for split in sources.SPLITS}


def encode_pairs(tokenizer: Tokenizer, pairs: Sequence[sources.Document], length: int,
                 *, pad_id: int, bos_id: int, eos_id: int, truncate: bool,
                 pack: bool = False) -> tuple[dict[str, np.ndarray], int]:
  """(rows, how many pairs were too long): each row [N, S] or [N, T], S = T = length.

  source [N, S] int32: source tokens + EOS, then pad_id. source_segment_ids [N, S]:
  1 on real tokens, 0 on padding. inputs [N, T]: BOS + target tokens; targets
  [N, T]: target tokens + EOS; weights [N, T] float32 and segment_ids [N, T] int32:
  1 on real positions, 0 on padding. A pair whose source + EOS or target + EOS
  exceeds `length` is dropped, or with `truncate` cut to its first `length` tokens
  (a cut target then has no EOS to predict: the model is not taught to stop there).

  pack: rows hold several pairs each (see `pack_pairs`), with the segment ids of
  pair k of a row k on both sides, and source_positions [N, S] and positions
  [N, T] int32 counting each pair's tokens from 0.
  """
  source_ids, target_ids = _encode(tokenizer, pairs)
  return _rows(source_ids, target_ids, length, pad_id=pad_id, bos_id=bos_id, eos_id=eos_id,
               truncate=truncate, pack=pack)


def pack_pairs(source: Sequence[np.ndarray], inputs: Sequence[np.ndarray],
               targets: Sequence[np.ndarray], length: int,
               pad_id: int) -> dict[str, np.ndarray]:
  """Pairs packed greedily, in the given order, into rows of `length` slots per side.

  source[i] [L_i] (source + EOS), inputs[i] and targets[i] [M_i], each at most
  `length` tokens. A pair goes into the current row if its source fits the source
  slots left and its target the target slots left, else it opens a new row.
  Pair k of a row (from 1) has segment id k in 'source_segment_ids' and
  'segment_ids', and 'source_positions' and 'positions' from 0 at its start.
  Padding fills the rest of each side: id `pad_id`, segment 0, position 0, weight 0.

  Returns 'source', 'source_segment_ids', 'source_positions' [N, S] and 'inputs',
  'targets', 'segment_ids', 'positions' [N, T] int32, 'weights' [N, T] float32.
  """
  # First decide where each pair goes (row, source column, target column).
  placements = []
  row, source_column, target_column = -1, length, length  # The first pair opens row 0.
  for source_ids, input_ids in zip(source, inputs):
    if source_column + len(source_ids) > length or target_column + len(input_ids) > length:
      row, source_column, target_column = row + 1, 0, 0
    placements.append((row, source_column, target_column))
    source_column += len(source_ids)
    target_column += len(input_ids)
  shape = (row + 1, length)
  rows = {"source": np.full(shape, pad_id, np.int32),
          "source_segment_ids": np.zeros(shape, np.int32),
          "source_positions": np.zeros(shape, np.int32),
          "inputs": np.full(shape, pad_id, np.int32),
          "targets": np.full(shape, pad_id, np.int32),
          "weights": np.zeros(shape, np.float32),
          "segment_ids": np.zeros(shape, np.int32),
          "positions": np.zeros(shape, np.int32)}
  previous_row, segment = -1, 0
  for source_ids, input_ids, target_ids, (row, source_column, target_column) in zip(
      source, inputs, targets, placements):
    segment = segment + 1 if row == previous_row else 1
    previous_row = row
    source_span = slice(source_column, source_column + len(source_ids))
    rows["source"][row, source_span] = source_ids
    rows["source_segment_ids"][row, source_span] = segment
    rows["source_positions"][row, source_span] = np.arange(len(source_ids))
    target_span = slice(target_column, target_column + len(input_ids))
    rows["inputs"][row, target_span] = input_ids
    rows["targets"][row, target_span] = target_ids
    rows["weights"][row, target_span] = 1.0
    rows["segment_ids"][row, target_span] = segment
    rows["positions"][row, target_span] = np.arange(len(input_ids))
  return rows


def fill_ratios(rows: dict[str, np.ndarray]) -> tuple[float, float]:
  """(source, target) real tokens / slots of rows, packed or not."""
  return tuple(np.count_nonzero(rows[key]) / max(rows[key].size, 1)
               for key in ("source_segment_ids", "segment_ids"))


def build(cfg: ExperimentConfig, existing: Optional[tokenizer_lib.Existing]) -> TranslationData:
  """Reads, splits and tokenizes `data.*` (training a tokenizer unless one exists)."""
  d, t, e, length = cfg.data, cfg.train, cfg.eval, cfg.model.max_length
  parts = read_splits(d, t.seed)
  pairs = [pair for split in sources.SPLITS for pair in parts[split]]
  for split, members in parts.items():
    logging.info("%s: %d pairs, %d distinct sources", split, len(members),
                 len({pair.text for pair in members}))
  # One joint vocabulary, so the model may share source and target embeddings. A
  # character vocabulary must cover every character it will meet.
  vocabulary_pairs = parts["train"] if d.tokenizer != "char" else pairs
  texts = [text for pair in vocabulary_pairs for text in (pair.text, pair.target)]
  tokenizer = tokenizer_lib.make(cfg.data, existing, texts, TRANSLATION_SPECIAL_TOKENS)
  missing = [token for token in TRANSLATION_SPECIAL_TOKENS
             if token not in tokenizer.special_tokens]
  if missing:
    where = f"tokenizer {existing.path}" if existing is not None else "the tokenizer"
    raise DataError(f"{where} lacks the special tokens "
                    f"{', '.join(missing)} that seq2seq needs")
  special_ids = dict(pad_id=tokenizer.token_id(special_tokens.PAD),
                     bos_id=tokenizer.token_id(special_tokens.BOS),
                     eos_id=tokenizer.token_id(special_tokens.EOS))

  pack = d.packing == "documents"
  train_source_ids, train_target_ids = _encode(tokenizer, parts["train"])
  _log_lengths("source", train_source_ids, length)
  _log_lengths("target", train_target_ids, length)
  if pack:  # Packed in a seeded random order, so a row's pairs are not neighbours in the
    # corpus (Tatoeba sorts by length and lists a sentence's translations together).
    order = np.random.default_rng(t.seed).permutation(len(train_source_ids))
    train_source_ids = [train_source_ids[i] for i in order]
    train_target_ids = [train_target_ids[i] for i in order]
  train_rows, dropped = _rows(train_source_ids, train_target_ids, length, truncate=False,
                              pack=pack, **special_ids)
  validation_rows, cut = encode_pairs(tokenizer, parts["validation"], length, truncate=True,
                                      pack=pack, **special_ids)
  logging.info("dropped %d of %d training pairs longer than %d tokens; cut %d of %d "
               "validation pairs", dropped, len(parts["train"]), length, cut,
               len(parts["validation"]))
  for split, rows, num_pairs in (("training", train_rows, len(parts["train"]) - dropped),
                                 ("validation", validation_rows, len(parts["validation"]))):
    logging.info("%s: %d pairs in %d rows of %d tokens (data.packing=%s); fill (real "
                 "tokens / slots) source %.1f%%, target %.1f%%", split, num_pairs,
                 len(rows["inputs"]), length, d.packing,
                 *(100 * ratio for ratio in fill_ratios(rows)))
  num_rows = len(train_rows["inputs"])
  if num_rows < t.batch_size:
    has = (f"packs into {num_rows} rows of model.max_length={length}" if pack else
           f"has {num_rows} pairs that fit model.max_length={length}")
    raise DataError(f"the training split of {d.path} {has}, fewer than "
                    f"train.batch_size={t.batch_size}")
  eval_rows = {k: v[:e.num_batches * e.batch_size] for k, v in validation_rows.items()}
  eval_list = row_batches.batches_of_rows(eval_rows, e.batch_size)
  return TranslationData(
      tokenizer=tokenizer,
      train_batch_at=lambda step: row_batches.rows_batch_at(
          train_rows, t.seed, step, t.batch_size, jax.process_index(), jax.process_count()),
      eval_batches=lambda: iter(eval_list),
      validation_pairs=[(pair.text, pair.target) for pair in parts["validation"]],
      test_pairs=[(pair.text, pair.target) for pair in parts["test"]])


def _encode(tokenizer: Tokenizer,
            pairs: Sequence[sources.Document]) -> tuple[list[np.ndarray], list[np.ndarray]]:
  """(source ids, target ids), one [L] array per pair, without special tokens."""
  return (tokenizer_lib.encode_all(tokenizer, [pair.text for pair in pairs]),
          tokenizer_lib.encode_all(tokenizer, [pair.target for pair in pairs]))


def _rows(source_ids: Sequence[np.ndarray], target_ids: Sequence[np.ndarray], length: int,
          *, pad_id: int, bos_id: int, eos_id: int, truncate: bool,
          pack: bool = False) -> tuple[dict[str, np.ndarray], int]:
  """The rows of `encode_pairs` from token ids."""
  eos, bos = np.array([eos_id], np.int32), np.array([bos_id], np.int32)
  too_long = [len(source) + 1 > length or len(target) + 1 > length
              for source, target in zip(source_ids, target_ids)]
  kept = [i for i, long in enumerate(too_long) if truncate or not long]
  source = [np.concatenate([source_ids[i], eos])[:length] for i in kept]
  inputs = [np.concatenate([bos, target_ids[i]])[:length] for i in kept]
  targets = [np.concatenate([target_ids[i], eos])[:length] for i in kept]
  if pack:
    return pack_pairs(source, inputs, targets, length, pad_id), sum(too_long)
  source, inputs, targets = (_padded(side, length, pad_id) for side in (source, inputs, targets))
  rows = {"source": source[0], "source_segment_ids": source[1],
          "inputs": inputs[0], "targets": targets[0],
          "weights": targets[1].astype(np.float32), "segment_ids": targets[1]}
  return rows, sum(too_long)


def _padded(sequences: list[np.ndarray], length: int,
            pad_id: int) -> tuple[np.ndarray, np.ndarray]:
  """([N, length] int32 ids padded with pad_id, [N, length] int32 1 on real tokens)."""
  lengths = np.array([len(sequence) for sequence in sequences], np.int64)
  real = np.arange(length)[None, :] < lengths[:, None]  # [N, length]
  ids = np.full(real.shape, pad_id, np.int32)
  if sequences:
    ids[real] = np.concatenate(sequences)  # Row-major, as the mask enumerates them.
  return ids, real.astype(np.int32)


def _log_lengths(side: str, ids: Sequence[np.ndarray], length: int) -> None:
  """Percentiles of training token counts (EOS included), to choose model.max_length."""
  counts = np.array([len(sequence) + 1 for sequence in ids])
  p50, p90, p99 = np.percentile(counts, [50, 90, 99])
  logging.info("training %s tokens + EOS: median %d, 90%% %d, 99%% %d, max %d; "
               "%.2f%% fit max_length %d", side, p50, p90, p99, counts.max(),
               100 * np.mean(counts <= length), length)
