"""BERT examples: passages, sentence pairs, their row layout, batches and `mlm_data.build`."""

import numpy as np
import pytest

from configs import clm
from transformer_jax import configuration
from transformer_jax.data.tasks import mlm_data
from transformer_jax.data.batches import sentence_pairs
from transformer_jax.data.tokenizers import special_tokens
from transformer_jax.errors import DataError

CLS, SEP, PAD, MASK = 1, 2, 0, 3
RANDOM_IDS = np.arange(10, 20, dtype=np.int32)


def _id_passages(sizes, first_id=1000, gap=1000):
  """Passage p's sentence k is the one token first_id + gap·p + k: ids tell where they sit."""
  return [[np.array([first_id + gap * p + k], np.int32) for k in range(size)]
          for p, size in enumerate(sizes)]


def _batch(passages_tokens, seed=0, step=0, batch_size=8, length=16, **kwargs):
  options = dict(cls_id=CLS, sep_id=SEP, pad_id=PAD, mask_id=MASK, random_ids=RANDOM_IDS,
                 mask_probability=0.15, mask_token_probability=0.8,
                 random_token_probability=0.1, next_sentence_probability=0.5)
  options.update(kwargs)
  return sentence_pairs.batch_at(passages_tokens, seed, step, batch_size, length, **options)


def test_passages_cut_at_blank_lines():
  text = ("\n\nFirst Citizen:\nBefore we proceed any further, hear me speak.\n \t\n"
          "All:\r\nSpeak, speak.\r\n\n\n\nFirst Citizen:\n  You are all resolved?")
  assert sentence_pairs.passages(text) == [
      ["First Citizen:", "Before we proceed any further, hear me speak."],
      ["All:", "Speak, speak."],
      ["First Citizen:", "  You are all resolved?"]]
  assert not sentence_pairs.passages(" \n\n\t\n")


def test_encode_pair_layout():
  row = sentence_pairs.encode_pair(np.array([10, 11]), np.array([12]), 8, CLS, SEP, PAD)
  assert row["inputs"].tolist() == [CLS, 10, 11, SEP, 12, SEP, PAD, PAD]
  assert row["token_types"].tolist() == [0, 0, 0, 0, 1, 1, 0, 0]
  assert row["segment_ids"].tolist() == [1, 1, 1, 1, 1, 1, 0, 0]
  assert row["maskable"].tolist() == [False, True, True, False, True, False, False, False]
  assert row["inputs"].dtype == row["token_types"].dtype == row["segment_ids"].dtype == np.int32
  full = sentence_pairs.encode_pair(np.array([10]), np.array([12]), 5, CLS, SEP, PAD)
  assert full["inputs"].tolist() == [CLS, 10, SEP, 12, SEP]
  with pytest.raises(ValueError, match="does not fit"):
    sentence_pairs.encode_pair(np.array([10, 11]), np.array([12]), 5, CLS, SEP, PAD)


def _truncate_by_loop(a_length, b_length, max_tokens):
  while a_length + b_length > max_tokens:
    if a_length > b_length:
      a_length -= 1
    else:
      b_length -= 1
  return a_length, b_length


def test_truncated_lengths_match_cutting_the_longer_one_token_at_a_time():
  assert sentence_pairs.truncated_lengths(3, 4, 10) == (3, 4)
  assert sentence_pairs.truncated_lengths(2, 20, 10) == (2, 8)
  assert sentence_pairs.truncated_lengths(20, 3, 10) == (7, 3)
  assert sentence_pairs.truncated_lengths(20, 20, 9) == (5, 4)
  for max_tokens in range(2, 14):
    for a_length in range(1, 16):
      for b_length in range(1, 16):
        assert (sentence_pairs.truncated_lengths(a_length, b_length, max_tokens)
                == _truncate_by_loop(a_length, b_length, max_tokens))


def test_is_next_pairs_continue_and_others_do_not():
  passages_tokens = _id_passages([1, 2, 3, 5, 8, 1, 4])
  rng = np.random.default_rng(0)
  is_next_count, examples = 0, 3000
  for _ in range(examples):
    a, b, is_next = sentence_pairs.pair_example(passages_tokens, rng, 6, 0.3)
    is_next_count += is_next
    assert len(a) >= 1 and len(b) >= 1 and len(a) + len(b) <= 6
    passage, sentence = divmod(int(a[0]) - 1000, 1000)
    assert len(passages_tokens[passage]) >= 2
    assert a.tolist() == list(range(a[0], a[0] + len(a)))  # Consecutive sentences of A's.
    assert sentence + len(a) < len(passages_tokens[passage])  # A leaves one sentence.
    b_passage, b_sentence = divmod(int(b[0]) - 1000, 1000)
    assert b.tolist() == list(range(b[0], b[0] + len(b)))
    assert b_sentence + len(b) <= len(passages_tokens[b_passage])
    if is_next:
      assert b[0] == a[-1] + 1
    else:
      assert b_passage != passage
  sigma = np.sqrt(examples * 0.3 * 0.7)
  assert abs(is_next_count - 0.3 * examples) < 5 * sigma


def test_one_passage_draws_b_elsewhere_in_it():
  passages_tokens = _id_passages([4])
  rng = np.random.default_rng(1)
  starts = set()
  for _ in range(200):
    a, b, is_next = sentence_pairs.pair_example(passages_tokens, rng, 5, 0.0)
    assert is_next == 0 and b[0] != a[-1] + 1 and 1000 <= b[0] < 1004
    starts.add(int(b[0]))
  assert len(starts) > 1


def test_long_sentences_are_truncated_to_fit():
  rng = np.random.default_rng(2)
  passages_tokens = [[np.arange(100 * p + 10 * k, 100 * p + 10 * k + 9, dtype=np.int32)
                      for k in range(3)] for p in range(4)]  # Sentences of 9 tokens.
  for _ in range(300):
    a, b, is_next = sentence_pairs.pair_example(passages_tokens, rng, 7, 0.5)
    assert len(a) >= 1 and len(b) >= 1 and len(a) + len(b) == 7
    assert a[0] % 10 == 0 and b[0] % 10 == 0  # Both start at a sentence's start.
    assert a.tolist() == list(range(a[0], a[0] + len(a)))
    if is_next:
      assert b[0] == a[0] + 10


def test_no_two_sentence_passage_fails():
  with pytest.raises(DataError, match="no passage has two sentences"):
    sentence_pairs.pair_example(_id_passages([1, 1, 1]), np.random.default_rng(0), 6, 0.5)


def test_batch_layout_and_masking():
  batch = _batch(_id_passages([2, 3, 5, 1, 4]), batch_size=16, length=12)
  assert {name: value.shape for name, value in batch.items()} == {
      "inputs": (16, 12), "targets": (16, 12), "weights": (16, 12), "token_types": (16, 12),
      "segment_ids": (16, 12), "is_next": (16,)}
  assert batch["weights"].dtype == np.float32 and batch["is_next"].dtype == np.int32
  targets, real = batch["targets"], batch["segment_ids"] == 1
  assert (targets[:, 0] == CLS).all()
  assert ((targets == SEP).sum(axis=1) == 2).all()
  assert (targets[~real] == PAD).all()
  assert (batch["token_types"][~real] == 0).all()
  maskable = real & (targets >= 1000)
  assert not batch["weights"][~maskable].any()
  assert (batch["weights"].sum(axis=1) >= 1).all()
  unweighted = batch["weights"] == 0
  np.testing.assert_array_equal(batch["inputs"][unweighted], targets[unweighted])
  for row in range(16):
    second_sep = np.flatnonzero(targets[row] == SEP)[1]
    types = batch["token_types"][row]
    first_b = np.flatnonzero(types)[0]
    assert targets[row, first_b - 1] == SEP and (types[first_b:second_sep + 1] == 1).all()


def test_batch_is_a_pure_function_of_seed_and_step():
  passages_tokens = _id_passages([2, 3, 5, 1, 4])
  first, again = _batch(passages_tokens, step=3), _batch(passages_tokens, step=3)
  for name in first:
    np.testing.assert_array_equal(first[name], again[name])
  assert not np.array_equal(first["targets"], _batch(passages_tokens, step=4)["targets"])
  assert not np.array_equal(first["targets"], _batch(passages_tokens, seed=1, step=3)["targets"])


def test_processes_split_the_global_batch():
  passages_tokens = _id_passages([2, 3, 5, 1, 4])
  whole = _batch(passages_tokens, step=5)
  parts = [_batch(passages_tokens, step=5, process_index=p, process_count=2) for p in range(2)]
  for name in whole:
    np.testing.assert_array_equal(np.concatenate([part[name] for part in parts]), whole[name])


def _config(path, **model):
  config = clm.get_config("tiny")
  config.experiment = "mlm"
  config.data.path = str(path)
  for key, value in model.items():
    config.model[key] = value
  return configuration.validate(config)


def test_build_from_a_text_file(tmp_path):
  text = "".join(f"Speaker {i}:\nLine one of {i}.\nLine two.\n\n" for i in range(30))
  (tmp_path / "speeches.txt").write_text(text, encoding="utf-8")
  data = mlm_data.build(_config(tmp_path / "speeches.txt"), None)
  tokenizer = data.tokenizer
  assert tokenizer.special_tokens == mlm_data.MLM_SPECIAL_TOKENS
  characters = len(set(text))
  assert tokenizer.token_id(special_tokens.CLS) == characters + 2
  batch = data.train_batch_at(0)
  assert {name: value.shape for name, value in batch.items()} == {
      "inputs": (8, 32), "targets": (8, 32), "weights": (8, 32), "token_types": (8, 32),
      "segment_ids": (8, 32), "is_next": (8,)}
  assert (batch["targets"][:, 0] == tokenizer.token_id(special_tokens.CLS)).all()
  assert ((batch["targets"] == tokenizer.token_id(special_tokens.SEP)).sum(axis=1) == 2).all()
  padding = batch["segment_ids"] == 0
  assert (batch["targets"][padding] == tokenizer.token_id(special_tokens.PAD)).all()
  assert (batch["inputs"] == tokenizer.token_id(special_tokens.MASK)).any()
  assert tokenizer.decode(batch["targets"][0, 1:]).startswith(("Speaker", "Line"))
  np.testing.assert_array_equal(data.train_batch_at(0)["inputs"], batch["inputs"])
  evaluation, again = list(data.eval_batches()), list(data.eval_batches())
  assert len(evaluation) == 2 and evaluation[0]["inputs"].shape == (8, 32)
  np.testing.assert_array_equal(evaluation[1]["inputs"], again[1]["inputs"])


def test_build_errors(tmp_path):
  (tmp_path / "lines.txt").write_text("".join(f"line {i}\n\n" for i in range(30)))
  with pytest.raises(DataError, match="has no passage of two or more lines"):
    mlm_data.build(_config(tmp_path / "lines.txt"), None)
  with pytest.raises(DataError, match="max_length=4 is too short"):
    mlm_data.build(_config(tmp_path / "lines.txt", max_length=4), None)
