"""Packed rows: exact layout, no target across documents, same logits and loss as unpacked."""

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import deterministic_apply, init_decoder
from transformer_jax.config_sections import ModelConfig
from transformer_jax.data.batches.chunking import chunk_document
from transformer_jax.data.batches.packing import contiguous_rows, pack_documents
from transformer_jax.objectives.cross_entropy import cross_entropy_sums

EOS, PAD = 1, 0


def test_pack_documents_by_hand():
  batch = pack_documents([np.array([5, 6, 7]), np.array([8, 9]), np.array([10])],
                         length=5, eos_id=EOS, pad_id=PAD)
  # [5 6 7]+EOS gives 3 pairs, [8 9]+EOS 2 more: row 0 is full; [10]+EOS opens row 1.
  np.testing.assert_array_equal(batch["inputs"], [[5, 6, 7, 8, 9], [10, 0, 0, 0, 0]])
  np.testing.assert_array_equal(batch["targets"], [[6, 7, 1, 9, 1], [1, 0, 0, 0, 0]])
  np.testing.assert_array_equal(batch["segment_ids"], [[1, 1, 1, 2, 2], [1, 0, 0, 0, 0]])
  np.testing.assert_array_equal(batch["positions"], [[0, 1, 2, 0, 1], [0, 0, 0, 0, 0]])
  np.testing.assert_array_equal(batch["weights"], [[1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
  for key in ("inputs", "targets", "segment_ids", "positions"):
    assert batch[key].dtype == np.int32, key
  assert batch["weights"].dtype == np.float32


def test_piece_that_does_not_fit_starts_a_new_row():
  batch = pack_documents([np.array([2, 3, 4]), np.array([5, 6, 7]), np.array([8])],
                         length=5, eos_id=EOS, pad_id=PAD)
  # 3 pairs leave room for 2: the next document (3 pairs) is not split, it moves on,
  # and the last one (1 pair) fills the gap after it rather than going back to row 0.
  np.testing.assert_array_equal(batch["inputs"], [[2, 3, 4, 0, 0], [5, 6, 7, 8, 0]])
  np.testing.assert_array_equal(batch["targets"], [[3, 4, 1, 0, 0], [6, 7, 1, 1, 0]])
  np.testing.assert_array_equal(batch["segment_ids"], [[1, 1, 1, 0, 0], [1, 1, 1, 2, 0]])
  np.testing.assert_array_equal(batch["weights"], [[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])


def test_long_document_is_chunked_by_hand():
  batch = pack_documents([np.array([2, 3, 4, 5, 6, 7, 8]), np.array([9, 10])],
                         length=3, eos_id=EOS, pad_id=PAD)
  # 7 pairs in pieces of 3, 3, 1; a piece's last target is the next token of the
  # document, only the final piece predicts EOS. [9 10] (2 pairs) fits after [8].
  np.testing.assert_array_equal(batch["inputs"], [[2, 3, 4], [5, 6, 7], [8, 9, 10]])
  np.testing.assert_array_equal(batch["targets"], [[3, 4, 5], [6, 7, 8], [1, 10, 1]])
  np.testing.assert_array_equal(batch["positions"], [[0, 1, 2], [0, 1, 2], [0, 0, 1]])
  np.testing.assert_array_equal(batch["segment_ids"], [[1, 1, 1], [1, 1, 1], [1, 2, 2]])
  # The pieces are chunk_document's, with overlap 0.
  np.testing.assert_array_equal(
      np.concatenate(chunk_document(np.array([2, 3, 4, 5, 6, 7, 8]), 3, 0)),
      batch["inputs"][:3].ravel()[:7])


def test_empty_input_and_empty_documents():
  assert pack_documents([], 4, EOS, PAD)["inputs"].shape == (0, 4)
  # An empty document has no pairs (its EOS would have nothing to follow).
  batch = pack_documents([np.array([], np.int32), np.array([3])], 4, EOS, PAD)
  np.testing.assert_array_equal(batch["inputs"], [[3, 0, 0, 0]])
  np.testing.assert_array_equal(batch["targets"], [[1, 0, 0, 0]])


def _segments(batch):
  """[(row, columns)] of every segment, in packing order."""
  found = []
  for row, segment_ids in enumerate(batch["segment_ids"]):
    for segment in range(1, segment_ids.max() + 1):
      found.append((row, np.flatnonzero(segment_ids == segment)))
  return found


def test_no_target_crosses_documents_and_padding_has_no_weight():
  rng = np.random.default_rng(0)
  # Token ids 2..19, never EOS, so the only EOS targets are the documents' ends.
  documents = [rng.integers(2, 20, size=size) for size in (1, 9, 4, 16, 3, 7, 2, 5, 8)]
  batch = pack_documents(documents, length=6, eos_id=EOS, pad_id=PAD)
  segments = _segments(batch)
  for row, columns in segments:
    assert columns.tolist() == list(range(columns[0], columns[0] + len(columns)))
    np.testing.assert_array_equal(batch["positions"][row, columns], np.arange(len(columns)))
    inputs, targets = batch["inputs"][row, columns], batch["targets"][row, columns]
    np.testing.assert_array_equal(targets[:-1], inputs[1:])  # Next token, same document.
  # Read back in order, the segments are exactly the documents, each ending in EOS.
  inputs = np.concatenate([batch["inputs"][row, columns] for row, columns in segments])
  targets = np.concatenate([batch["targets"][row, columns] for row, columns in segments])
  np.testing.assert_array_equal(inputs, np.concatenate(documents))
  np.testing.assert_array_equal(
      targets, np.concatenate([np.append(document, EOS)[1:] for document in documents]))
  # Padding (segment 0) carries the pad id and no weight; every real token weighs 1.
  padding = batch["segment_ids"] == 0
  assert padding.any()
  np.testing.assert_array_equal(batch["weights"], (~padding).astype(np.float32))
  assert (batch["inputs"][padding] == PAD).all() and (batch["targets"][padding] == PAD).all()
  assert (batch["positions"][padding] == 0).all()
  # Deterministic.
  again = pack_documents(documents, length=6, eos_id=EOS, pad_id=PAD)
  for key, value in batch.items():
    np.testing.assert_array_equal(again[key], value)


def test_contiguous_rows_by_hand():
  rows = contiguous_rows(np.arange(12), 4)
  # Windows of 5 tokens starting every 4; the tail [8 9 10 11] is too short for a row.
  np.testing.assert_array_equal(rows["inputs"], [[0, 1, 2, 3], [4, 5, 6, 7]])
  np.testing.assert_array_equal(rows["targets"], [[1, 2, 3, 4], [5, 6, 7, 8]])
  assert set(rows) == {"inputs", "targets"} and rows["inputs"].dtype == np.int32
  assert contiguous_rows(np.arange(4), 4)["inputs"].shape == (0, 4)


# Model equivalence: a packed batch and its documents alone give the same logits.
LENGTH, MODEL_EOS = 8, 10
CONFIG = ModelConfig(num_layers=2, num_heads=2, model_dim=16, mlp_dim=32, max_length=LENGTH,
                     dropout_rate=0.0, use_bias=True, dtype="float32", vocab_size=11)
DOCUMENTS = [np.array(d) for d in ([3, 1, 4, 1, 5], [9, 2, 6], [5, 3, 5, 8, 9, 7], [9])]
# Where each document's pairs land, by hand: 5 + 3 pairs fill row 0, 6 + 1 leave one
# column of padding in row 1.
LAYOUT = [(0, slice(0, 5)), (0, slice(5, 8)), (1, slice(0, 6)), (1, slice(6, 7))]


@pytest.fixture(scope="module")
def apply_and_params():
  model, params = init_decoder(CONFIG)
  apply = deterministic_apply(model)
  return apply, params


def _alone(apply, params, document):
  """Logits [L, V] and targets [L] of one document run by itself from position 0."""
  extended = np.append(document, MODEL_EOS)
  logits = apply(params, jnp.asarray(extended[None, :-1], jnp.int32))
  return np.asarray(logits[0]), extended[1:]


def test_packed_logits_equal_documents_alone(apply_and_params):
  apply, params = apply_and_params
  batch = pack_documents(DOCUMENTS, LENGTH, MODEL_EOS, PAD)
  assert batch["inputs"].shape == (2, LENGTH)
  packed = np.asarray(apply(params, jnp.asarray(batch["inputs"]),
                            positions=jnp.asarray(batch["positions"]),
                            segment_ids=jnp.asarray(batch["segment_ids"])))
  for document, (row, columns) in zip(DOCUMENTS, LAYOUT):
    logits, targets = _alone(apply, params, document)
    np.testing.assert_array_equal(batch["targets"][row, columns], targets)
    np.testing.assert_allclose(packed[row, columns], logits, rtol=1e-5, atol=1e-5)
  # Every real position was compared: the layout covers all non-padding columns.
  covered = np.zeros_like(batch["weights"])
  for row, columns in LAYOUT:
    covered[row, columns] = 1
  np.testing.assert_array_equal(covered, batch["weights"])


def test_packed_loss_equals_sum_of_document_losses(apply_and_params):
  apply, params = apply_and_params
  batch = pack_documents(DOCUMENTS, LENGTH, MODEL_EOS, PAD)
  logits = apply(params, jnp.asarray(batch["inputs"]), positions=jnp.asarray(batch["positions"]),
                 segment_ids=jnp.asarray(batch["segment_ids"]))
  packed = cross_entropy_sums(logits, jnp.asarray(batch["targets"]),
                              jnp.asarray(batch["weights"]))
  alone = [cross_entropy_sums(*map(lambda x: jnp.asarray(x)[None], _alone(apply, params, d)))
           for d in DOCUMENTS]
  assert float(packed["token_count"]) == sum(len(d) for d in DOCUMENTS) == 15
  for key in ("loss_sum", "correct_sum", "token_count"):
    np.testing.assert_allclose(float(packed[key]), sum(float(sums[key]) for sums in alone),
                               rtol=1e-5, atol=1e-5)
  # Without segment ids and positions, later documents would see earlier ones.
  unpacked = apply(params, jnp.asarray(batch["inputs"]))
  unpacked_loss = cross_entropy_sums(unpacked, jnp.asarray(batch["targets"]),
                                     jnp.asarray(batch["weights"]))["loss_sum"]
  assert abs(float(unpacked_loss) - float(packed["loss_sum"])) > 1e-3


def test_overlapping_chunks_score_each_target_once():
  # One document 0..6 (+ EOS 1 -> 7 pairs), rows of 4, overlap 2: pieces start at
  # pairs 0, 2, 4; the repeated pairs are context (weight 0).
  rows = pack_documents([np.arange(10, 17)], 4, eos_id=1, pad_id=0, overlap=2)
  assert rows["inputs"].tolist() == [[10, 11, 12, 13], [12, 13, 14, 15], [14, 15, 16, 0]]
  assert rows["targets"].tolist() == [[11, 12, 13, 14], [13, 14, 15, 16], [15, 16, 1, 0]]
  assert rows["weights"].tolist() == [[1, 1, 1, 1], [0, 0, 1, 1], [0, 0, 1, 0]]
  scored = rows["targets"][rows["weights"] == 1].tolist()
  assert scored == [11, 12, 13, 14, 15, 16, 1]  # Each target once; EOS only at the end.
