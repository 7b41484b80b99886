"""Translation data: rows by hand, packed or not, dropping and cutting long pairs, splits by
source, build()."""

import numpy as np
import pytest

from configs import clm
from transformer_jax import configuration
from transformer_jax.data.tokenizers import special_tokens
from transformer_jax.data.tasks import translation_data
from transformer_jax.data.tokenizers.bpe_tokenizer import BpeTokenizer
from transformer_jax.data.tokenizers.char_tokenizer import CharTokenizer
from transformer_jax.data.corpora.sources import Document
from transformer_jax.run import tokenizers
from transformer_jax.errors import DataError

# Characters a0 b1 x2 y3 z4, then PAD 5, BOS 6, EOS 7, UNK 8.
TOKENIZER = CharTokenizer(list("abxyz"), translation_data.TRANSLATION_SPECIAL_TOKENS)
IDS = dict(pad_id=5, bos_id=6, eos_id=7)
PAIRS = [Document("ab", "p:1", "xyz"), Document("b", "p:2", "y")]


def _as_lists(rows):
  return {name: values.tolist() for name, values in rows.items()}


def test_special_token_ids_of_the_hand_built_tokenizer():
  assert [TOKENIZER.token_id(token) for token in (special_tokens.PAD, special_tokens.BOS,
                                                   special_tokens.EOS)] == [5, 6, 7]


def test_rows_of_two_pairs_by_hand():
  rows, dropped = translation_data.encode_pairs(TOKENIZER, PAIRS, 5, truncate=False, **IDS)
  assert dropped == 0
  assert _as_lists(rows) == {
      "source": [[0, 1, 7, 5, 5], [1, 7, 5, 5, 5]],  # Source + EOS, padded.
      "source_segment_ids": [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]],
      "inputs": [[6, 2, 3, 4, 5], [6, 3, 5, 5, 5]],  # BOS + target.
      "targets": [[2, 3, 4, 7, 5], [3, 7, 5, 5, 5]],  # Target + EOS.
      "weights": [[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]],
      "segment_ids": [[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]],
  }
  assert {name: values.dtype for name, values in rows.items()} == {
      "source": np.int32, "source_segment_ids": np.int32, "inputs": np.int32,
      "targets": np.int32, "weights": np.float32, "segment_ids": np.int32}
  # Teacher forcing: each input after BOS is the previous position's target.
  real = rows["weights"][:, 1:] > 0
  assert (rows["inputs"][:, 1:][real] == rows["targets"][:, :-1][real]).all()


def test_too_long_pairs_are_dropped_for_training_and_cut_for_evaluation():
  pairs = PAIRS + [Document("aaab", "p:3", "x")]  # 3: source + EOS is 5 tokens.
  # At length 4, pair 1's target + EOS (4 tokens) fits and pair 3's source does not.
  rows, dropped = translation_data.encode_pairs(TOKENIZER, pairs, 4, truncate=False, **IDS)
  assert dropped == 1
  assert rows["source"].tolist() == [[0, 1, 7, 5], [1, 7, 5, 5]]
  # At length 3 pair 1's target is too long too.
  rows, dropped = translation_data.encode_pairs(TOKENIZER, pairs, 3, truncate=False, **IDS)
  assert dropped == 2
  assert rows["targets"].tolist() == [[3, 7, 5]]
  rows, cut = translation_data.encode_pairs(TOKENIZER, pairs, 3, truncate=True, **IDS)
  assert cut == 2
  assert _as_lists(rows) == {
      "source": [[0, 1, 7], [1, 7, 5], [0, 0, 0]],  # Pair 3 cut before its EOS.
      "source_segment_ids": [[1, 1, 1], [1, 1, 0], [1, 1, 1]],
      "inputs": [[6, 2, 3], [6, 3, 5], [6, 2, 5]],
      "targets": [[2, 3, 4], [3, 7, 5], [2, 7, 5]],  # Pair 1 cut: no EOS to predict.
      "weights": [[1, 1, 1], [1, 1, 0], [1, 1, 0]],
      "segment_ids": [[1, 1, 1], [1, 1, 0], [1, 1, 0]],
  }


@pytest.mark.parametrize("pack", [False, True])
def test_no_pairs_give_empty_rows(pack):
  rows, dropped = translation_data.encode_pairs(TOKENIZER, [], 4, truncate=False, pack=pack,
                                                **IDS)
  assert dropped == 0
  assert {name: values.shape for name, values in rows.items()} == {
      name: (0, 4) for name in rows}


# At length 7: pairs 1 and 2 fill row 0's target side; pair 3's source fits there but its
# target does not, so it opens row 1; pair 4 fills row 1's source side exactly; pair 5's
# target would fit row 1 but its source does not, so it opens row 2.
PACKED_PAIRS = [Document("a", "p:1", "xyz"), Document("b", "p:2", "yx"),
                Document("ab", "p:3", "z"), Document("aab", "p:4", "x"),
                Document("b", "p:5", "y")]


def test_packed_rows_by_hand():
  rows, dropped = translation_data.encode_pairs(TOKENIZER, PACKED_PAIRS, 7, truncate=False,
                                                pack=True, **IDS)
  assert dropped == 0
  assert _as_lists(rows) == {
      "source": [[0, 7, 1, 7, 5, 5, 5], [0, 1, 7, 0, 0, 1, 7], [1, 7, 5, 5, 5, 5, 5]],
      "source_segment_ids": [[1, 1, 2, 2, 0, 0, 0], [1, 1, 1, 2, 2, 2, 2],
                             [1, 1, 0, 0, 0, 0, 0]],
      "source_positions": [[0, 1, 0, 1, 0, 0, 0], [0, 1, 2, 0, 1, 2, 3],
                           [0, 1, 0, 0, 0, 0, 0]],
      "inputs": [[6, 2, 3, 4, 6, 3, 2], [6, 4, 6, 2, 5, 5, 5], [6, 3, 5, 5, 5, 5, 5]],
      "targets": [[2, 3, 4, 7, 3, 2, 7], [4, 7, 2, 7, 5, 5, 5], [3, 7, 5, 5, 5, 5, 5]],
      "weights": [[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0]],
      "segment_ids": [[1, 1, 1, 1, 2, 2, 2], [1, 1, 2, 2, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0]],
      "positions": [[0, 1, 2, 3, 0, 1, 2], [0, 1, 0, 1, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0]],
  }
  assert {name: values.dtype for name, values in rows.items()} == {
      "source": np.int32, "source_segment_ids": np.int32, "source_positions": np.int32,
      "inputs": np.int32, "targets": np.int32, "weights": np.float32,
      "segment_ids": np.int32, "positions": np.int32}
  assert translation_data.fill_ratios(rows) == (13 / 21, 13 / 21)


def _pairs_of(rows):
  """[(source, inputs, targets, weights)] token lists of every segment, row by row."""
  pairs = []
  for row in range(len(rows["source"])):
    for segment in range(1, int(rows["segment_ids"][row].max(initial=0)) + 1):
      source = rows["source_segment_ids"][row] == segment
      target = rows["segment_ids"][row] == segment
      pairs.append((rows["source"][row][source].tolist(), rows["inputs"][row][target].tolist(),
                    rows["targets"][row][target].tolist(),
                    rows["weights"][row][target].tolist()))
  return pairs


@pytest.mark.parametrize("length, truncate", [(4, False), (3, False), (4, True), (3, True)])
def test_packing_keeps_the_pairs_and_the_dropping_and_cutting_of_unpacked_rows(length,
                                                                              truncate):
  pairs = PACKED_PAIRS + PAIRS + [Document("aaab", "p:6", "x")]  # Source + EOS: 5 tokens.
  unpacked, dropped = translation_data.encode_pairs(TOKENIZER, pairs, length,
                                                    truncate=truncate, **IDS)
  packed, packed_dropped = translation_data.encode_pairs(TOKENIZER, pairs, length,
                                                         truncate=truncate, pack=True, **IDS)
  assert packed_dropped == dropped and dropped > 0
  assert _pairs_of(packed) == _pairs_of(unpacked)


def _pairs_with_repeated_source(count=30):
  """`count` sources; "Hi." three times, with three translations, among them."""
  pairs = [Document(f"Sentence {i}.", f"c:{i}", f"句子{i}。") for i in range(count)]
  for offset, target in ((3, "嗨。"), (11, "你好。"), (25, "您好。")):
    pairs.insert(offset, Document("Hi.", f"hi:{offset}", target))
  return pairs


@pytest.mark.parametrize("seed", range(5))
def test_split_by_source_keeps_a_source_and_its_translations_together(seed):
  pairs = _pairs_with_repeated_source()
  parts = translation_data.split_pairs(pairs, 0.3, 0.3, seed)
  [home] = [split for split, members in parts.items()
            if any(pair.text == "Hi." for pair in members)]
  assert [pair.target for pair in parts[home] if pair.text == "Hi."] == ["嗨。", "你好。", "您好。"]
  training_sources = {pair.text for pair in parts["train"]}
  held_out_sources = {pair.text for split in ("validation", "test") for pair in parts[split]}
  assert not training_sources & held_out_sources
  assert all(parts[split] for split in parts)
  for members in parts.values():  # Input order kept; together, every pair once.
    assert members == sorted(members, key=pairs.index)
  assert sorted(map(pairs.index, sum(parts.values(), []))) == list(range(len(pairs)))


def test_split_is_stable_and_depends_only_on_source_text():
  pairs = _pairs_with_repeated_source()
  parts = translation_data.split_pairs(pairs, 0.3, 0.3, seed=7)
  assert parts == translation_data.split_pairs(pairs, 0.3, 0.3, seed=7)
  # Other names (line numbers) and order: each source keeps its split.
  renamed = [Document(pair.text, f"other:{i}", pair.target)
             for i, pair in enumerate(reversed(pairs))]
  renamed_parts = translation_data.split_pairs(renamed, 0.3, 0.3, seed=7)
  split_of = {pair.text: split for split, members in parts.items() for pair in members}
  assert all(split_of[pair.text] == split
             for split, members in renamed_parts.items() for pair in members)
  assert translation_data.split_pairs(pairs, 0.3, 0.3, seed=8) != parts


def _write_corpus(path, count=40):
  """A tsv of `count` numbered sentences, the first three times, plus attributions."""
  lines = [f"I saw {i} cats.\t我看见了{i}只猫。\tCC-BY #{i}" for i in range(count)]
  lines[1:1] = ["I saw 0 cats.\t我看到0只猫。\tCC-BY", "I saw 0 cats.\t我见过0只猫。\tCC-BY"]
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")
  return path


def _config(path, **data):
  config = clm.get_config("tiny")  # max_length 32, batch size 8, 2 evaluation batches.
  config.experiment = "seq2seq"
  config.data.format = "tsv"
  config.data.path = str(path)
  config.data.validation_fraction = 0.25
  config.data.test_fraction = 0.1
  config.data.packing = "none"
  for field, value in data.items():
    setattr(config.data, field, value)
  return configuration.validate(config)


def _source_text(tokenizer, row):
  eos = tokenizer.token_id(special_tokens.EOS)
  return tokenizer.decode(row[:list(row).index(eos)])


@pytest.mark.parametrize("tokenizer, vocab_size", [("char", 0), ("bpe", 300)])
def test_build_gives_deterministic_batches_of_held_out_sources(tmp_path, tokenizer,
                                                               vocab_size):
  cfg = _config(_write_corpus(tmp_path / "pairs.tsv"), tokenizer=tokenizer,
                vocab_size=vocab_size)
  data = translation_data.build(cfg, tokenizers.existing(cfg, str(tmp_path)))
  batch = data.train_batch_at(3)
  assert {name: (values.shape, values.dtype) for name, values in batch.items()} == {
      "source": ((8, 32), np.int32), "source_segment_ids": ((8, 32), np.int32),
      "inputs": ((8, 32), np.int32), "targets": ((8, 32), np.int32),
      "weights": ((8, 32), np.float32), "segment_ids": ((8, 32), np.int32)}
  assert _as_lists(data.train_batch_at(3)) == _as_lists(batch)
  assert _as_lists(data.train_batch_at(4)) != _as_lists(batch)

  held_out = {source for source, _ in data.validation_pairs + data.test_pairs}
  assert data.validation_pairs and data.test_pairs
  assert len(data.validation_pairs) + len(data.test_pairs) < 42
  trained = {_source_text(data.tokenizer, row)
             for step in range(10) for row in data.train_batch_at(step)["source"]}
  assert trained and not trained & held_out

  evaluated = min(len(data.validation_pairs), 16)
  batches = list(data.eval_batches())
  assert len(batches) == -(-evaluated // 8)
  assert all(b["inputs"].shape == (8, 32) for b in batches)
  rows = [row for b in batches for row, weights in zip(b["source"], b["weights"])
          if weights.sum() > 0]
  assert [_source_text(data.tokenizer, row) for row in rows] == [
      source for source, _ in data.validation_pairs[:evaluated]]
  assert [_as_lists(b) for b in data.eval_batches()] == [_as_lists(b) for b in batches]


def test_build_packs_training_and_evaluation_rows(tmp_path):
  cfg = _config(_write_corpus(tmp_path / "pairs.tsv"), packing="documents")
  data = translation_data.build(cfg, tokenizers.existing(cfg, str(tmp_path)))
  batch = data.train_batch_at(3)
  assert {name: (values.shape, values.dtype) for name, values in batch.items()} == {
      "source": ((8, 32), np.int32), "source_segment_ids": ((8, 32), np.int32),
      "source_positions": ((8, 32), np.int32), "inputs": ((8, 32), np.int32),
      "targets": ((8, 32), np.int32), "weights": ((8, 32), np.float32),
      "segment_ids": ((8, 32), np.int32), "positions": ((8, 32), np.int32)}
  assert (batch["segment_ids"].max(axis=1) > 1).any()  # Some rows hold several pairs.
  assert _as_lists(data.train_batch_at(3)) == _as_lists(batch)
  assert _as_lists(data.train_batch_at(4)) != _as_lists(batch)

  held_out = {source for source, _ in data.validation_pairs + data.test_pairs}
  trained = {_source_text(data.tokenizer, np.array(source))
             for step in range(10) for source, _, _, _ in _pairs_of(data.train_batch_at(step))}
  assert trained and not trained & held_out

  # Every validation pair (they fit in the 16 evaluation rows), in corpus order.
  rows = [_pairs_of(b) for b in data.eval_batches()]
  assert [(_source_text(data.tokenizer, np.array(source)),
           data.tokenizer.decode(inputs[1:])) for batch_pairs in rows
          for source, inputs, _, _ in batch_pairs] == data.validation_pairs
  assert [_as_lists(b) for b in data.eval_batches()] == [
      _as_lists(b) for b in data.eval_batches()]


@pytest.mark.parametrize("corpus_format", ["text", "jsonl"])
def test_a_corpus_without_targets_is_a_data_error(tmp_path, corpus_format):
  cfg = _config(_write_corpus(tmp_path / "pairs.txt"), format=corpus_format)
  with pytest.raises(DataError, match=r"^seq2seq needs a parallel corpus: data.format tsv "
                     r"or aligned, not '(text|jsonl)' \(.*pairs.txt\)$"):
    translation_data.build(cfg, tokenizers.existing(cfg, str(tmp_path)))


def test_pairs_empty_after_cleaning_are_dropped(tmp_path):
  path = tmp_path / "pairs.tsv"
  path.write_text("Hi.\t嗨。\n \t空。\nOK.\t\u200b\nYes.\t是。\n", encoding="utf-8")
  cfg = _config(path, remove_control_characters=True)  # Drops the zero-width space.
  pairs = translation_data.read_pairs(cfg.data)
  assert [(pair.text, pair.target) for pair in pairs] == [("Hi.", "嗨。"), ("Yes.", "是。")]


def test_aligned_files_give_pairs(tmp_path):
  (tmp_path / "en.txt").write_text("Hi.\nYes.\n", encoding="utf-8")
  (tmp_path / "zh.txt").write_text("嗨。\n是。\n", encoding="utf-8")
  cfg = _config(tmp_path / "en.txt", format="aligned", target_path=str(tmp_path / "zh.txt"))
  pairs = translation_data.read_pairs(cfg.data)
  assert [(pair.text, pair.target) for pair in pairs] == [("Hi.", "嗨。"), ("Yes.", "是。")]


@pytest.mark.parametrize("packing, has", [("none", "has 0 pairs that fit"),
                                           ("documents", "packs into 0 rows of")])
def test_too_few_training_pairs_that_fit_is_a_data_error(tmp_path, packing, has):
  path = tmp_path / "long.tsv"
  path.write_text("".join(f"{'word ' * 10}{i}\t{i}\n" for i in range(20)), encoding="utf-8")
  with pytest.raises(DataError, match=rf"long.tsv {has} model.max_length=32, fewer than "
                     r"train.batch_size=8$"):
    translation_data.build(_config(path, packing=packing), None)


def test_a_tokenizer_without_bos_is_a_data_error(tmp_path):
  tokenizer_file = str(tmp_path / "lm_tokenizer.json")
  BpeTokenizer.train(["I saw cats. 我看见了猫。"] * 20, 300, ("<pad>", "<eos>")).save(
      tokenizer_file)
  cfg = _config(_write_corpus(tmp_path / "pairs.tsv"), tokenizer="bpe",
                tokenizer_path=tokenizer_file)
  with pytest.raises(DataError, match=r"lm_tokenizer.json lacks the special tokens "
                     r"<bos>, <unk> that seq2seq needs$"):
    translation_data.build(cfg, tokenizers.existing(cfg, str(tmp_path)))
