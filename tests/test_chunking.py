"""Chunking long documents and sliding-window evaluation rows, checked by hand."""

import numpy as np
import pytest

from transformer_jax.data.batches.chunking import chunk_document, sliding_windows
from transformer_jax.data.batches.packing import contiguous_rows


def _lists(pieces):
  return [piece.tolist() for piece in pieces]


def test_chunk_document_without_overlap_by_hand():
  assert _lists(chunk_document(np.arange(7), 3, 0)) == [[0, 1, 2], [3, 4, 5], [6]]
  assert _lists(chunk_document(np.arange(6), 3, 0)) == [[0, 1, 2], [3, 4, 5]]


def test_chunk_document_with_overlap_by_hand():
  # Steps of 4 - 2 = 2; the last piece reaches the end and is shorter.
  assert _lists(chunk_document(np.arange(9), 4, 2)) == [
      [0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8]]
  assert _lists(chunk_document(np.arange(6), 4, 2)) == [[0, 1, 2, 3], [2, 3, 4, 5]]
  assert _lists(chunk_document(np.arange(5), 4, 3)) == [[0, 1, 2, 3], [1, 2, 3, 4]]


@pytest.mark.parametrize("size", [0, 1, 4])
def test_short_document_comes_back_whole(size):
  assert _lists(chunk_document(np.arange(size), 4, 1)) == [list(range(size))]


@pytest.mark.parametrize("size, length, overlap",
                         [(10, 3, 0), (10, 3, 1), (11, 4, 3), (23, 5, 2), (5, 5, 4)])
def test_chunks_cover_the_document(size, length, overlap):
  tokens = np.arange(size) * 7 % 13
  pieces = chunk_document(tokens, length, overlap)
  assert all(1 <= len(piece) <= length for piece in pieces)
  step = length - overlap
  for k, piece in enumerate(pieces):
    np.testing.assert_array_equal(piece, tokens[k * step:k * step + len(piece)])
  # Consecutive pieces share exactly `overlap` tokens and the last one ends the document.
  for before, after in zip(pieces, pieces[1:]):
    np.testing.assert_array_equal(before[step:], after[:overlap])
  assert (len(pieces) - 1) * step + len(pieces[-1]) == size
  # Dropping the overlap from each later piece gives back the document.
  joined = np.concatenate([pieces[0]] + [piece[overlap:] for piece in pieces[1:]])
  np.testing.assert_array_equal(joined, tokens)


@pytest.mark.parametrize("overlap", [-1, 3, 4])
def test_invalid_overlap_names_the_field(overlap):
  with pytest.raises(ValueError, match="data.chunk_overlap"):
    chunk_document(np.arange(10), 3, overlap)


def test_sliding_windows_by_hand():
  rows = sliding_windows(np.arange(10), length=4, stride=2)
  np.testing.assert_array_equal(rows["inputs"], [[0, 1, 2, 3],
                                                 [2, 3, 4, 5],
                                                 [4, 5, 6, 7],
                                                 [6, 7, 8, 9]])
  np.testing.assert_array_equal(rows["targets"], [[1, 2, 3, 4],
                                                  [3, 4, 5, 6],
                                                  [5, 6, 7, 8],
                                                  [7, 8, 9, 0]])  # Padding.
  np.testing.assert_array_equal(rows["weights"], [[1, 1, 1, 1],
                                                  [0, 0, 1, 1],
                                                  [0, 0, 1, 1],
                                                  [0, 0, 1, 0]])
  assert rows["inputs"].dtype == rows["targets"].dtype == np.int32
  assert rows["weights"].dtype == np.float32


def _scored(rows, stride):
  """(target position, tokens of context) of every scored target, row by row."""
  scored = []
  for k, weights in enumerate(rows["weights"]):
    for column in np.flatnonzero(weights):
      # The input at `column` is token k*stride + column: the target is the next one,
      # predicted from column + 1 tokens.
      scored.append((k * stride + column + 1, column + 1))
  return scored


def test_sliding_windows_context_by_hand():
  rows = sliding_windows(np.arange(10), length=4, stride=2)
  # The first row scores positions 1..4 from all the context they have; later rows
  # score only their last 2 targets, with 4 - 2 + 1 = 3 or 4 tokens of context.
  assert _scored(rows, 2) == [(1, 1), (2, 2), (3, 3), (4, 4),
                              (5, 3), (6, 4), (7, 3), (8, 4), (9, 3)]


@pytest.mark.parametrize("size, length, stride",
                         [(10, 4, 2), (10, 4, 4), (10, 4, 1), (3, 4, 2), (2, 4, 3),
                          (17, 5, 3), (21, 5, 5), (40, 8, 7)])
def test_sliding_windows_score_each_target_once(size, length, stride):
  tokens = (np.arange(size) * 5 + 3) % 11
  rows = sliding_windows(tokens, length, stride)
  assert rows["weights"].sum() == size - 1
  scored = _scored(rows, stride)
  positions = sorted(position for position, _ in scored)
  assert positions == list(range(1, size))  # Each target position exactly once.
  for position, context in scored:
    assert context >= min(position, length - stride + 1)
  # What is scored really is the token at that position, predicted from the one before.
  for k, (inputs, targets) in enumerate(zip(rows["inputs"], rows["targets"])):
    for column in np.flatnonzero(rows["weights"][k]):
      position = k * stride + column + 1
      assert targets[column] == tokens[position] and inputs[column] == tokens[position - 1]


def test_stride_equal_to_length_gives_non_overlapping_rows():
  rows = sliding_windows(np.arange(13), length=4, stride=4)
  np.testing.assert_array_equal(rows["inputs"], [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]])
  np.testing.assert_array_equal(rows["targets"], [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])
  np.testing.assert_array_equal(rows["weights"], np.ones((3, 4)))
  # The same rows as the contiguous training layout.
  contiguous = contiguous_rows(np.arange(13), 4)
  np.testing.assert_array_equal(rows["inputs"], contiguous["inputs"])
  np.testing.assert_array_equal(rows["targets"], contiguous["targets"])


def test_text_too_short_to_score_gives_no_rows():
  rows = sliding_windows(np.array([7]), length=4, stride=2)
  assert rows["inputs"].shape == rows["targets"].shape == rows["weights"].shape == (0, 4)


@pytest.mark.parametrize("stride", [0, -1, 5])
def test_invalid_stride_names_the_field(stride):
  with pytest.raises(ValueError, match="eval.stride"):
    sliding_windows(np.arange(10), 4, stride)
