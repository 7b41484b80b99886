"""Training rows from separate documents: packed rows, or one contiguous stream.

`pack_documents` places whole documents side by side in rows of T tokens, each
its own segment: with the rows' 'segment_ids' and 'positions' the decoder
attends only within a document and counts positions from its start, so a packed
row gives the same logits as its documents run one by one, without the compute
that padding each document to T would waste. `contiguous_rows` is the nanoGPT
alternative for comparison: documents concatenated into one stream and cut into
rows regardless of where documents end.

Axis legend: L tokens, T row length, N rows.
"""

from typing import Sequence

import numpy as np

from transformer_jax.data.batches.chunking import chunk_document


def document_pairs(document: np.ndarray, length: int, eos_id: int,
                   overlap: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
  """(inputs, targets) pieces of one document, each of at most `length` tokens.

  document: [L] without EOS. With EOS appended, inputs are (doc + EOS)[:-1] and
  targets (doc + EOS)[1:]: L pairs, the last one predicting EOS. A document of
  more than `length` tokens is cut into pieces with `chunk_document`; cutting
  inputs and targets at the same places keeps each target the token that follows
  its input in the document. With `overlap`, each piece after the first repeats
  the previous piece's last `overlap` pairs as context (see `pack_documents`).
  An empty document has no pairs.
  """
  extended = np.append(np.asarray(document), eos_id)
  return list(zip(chunk_document(extended[:-1], length, overlap),
                  chunk_document(extended[1:], length, overlap)))


def pack_documents(documents: Sequence[np.ndarray], length: int, eos_id: int,
                   pad_id: int, overlap: int = 0) -> dict[str, np.ndarray]:
  """Documents packed greedily, in order, into rows of `length` tokens.

  documents: each [L_i] without EOS. Every piece from `document_pairs` goes into
  the current row if it fits in the space left there, else it starts a new row;
  a document is split across rows only where it had to be chunked. Each piece is
  one segment: 'segment_ids' count 1, 2, ... within a row and 'positions' restart
  at 0, so no target crosses a document boundary and no token attends to another
  document. Padding fills the rest of a row: id `pad_id`, segment 0, position 0,
  weight 0. Deterministic: the same documents always give the same rows.

  overlap: a chunked document's pieces after the first start with the last
  `overlap` pairs of the piece before, as context only: those targets get weight
  0, so every target of a document is scored exactly once.

  Returns {'inputs', 'targets', 'segment_ids', 'positions'} int32 and 'weights'
  float32, each [N, T].
  """
  if length <= 0:
    raise ValueError(f"row length must be positive, got {length}")
  pieces, context_only = [], []  # context_only: leading pairs already scored before.
  for document in documents:
    for index, piece in enumerate(document_pairs(document, length, eos_id, overlap)):
      if len(piece[0]):
        pieces.append(piece)
        context_only.append(overlap if index else 0)
  # First decide where each piece goes (row, column), then fill arrays once.
  placements = []
  row, column = -1, length  # No row yet: the first piece opens row 0.
  for inputs, _ in pieces:
    if column + len(inputs) > length:
      row, column = row + 1, 0
    placements.append((row, column))
    column += len(inputs)
  num_rows = row + 1
  batch = {"inputs": np.full((num_rows, length), pad_id, np.int32),
           "targets": np.full((num_rows, length), pad_id, np.int32),
           "segment_ids": np.zeros((num_rows, length), np.int32),
           "positions": np.zeros((num_rows, length), np.int32),
           "weights": np.zeros((num_rows, length), np.float32)}
  previous_row, segment = -1, 0
  for (inputs, targets), (row, column), skip in zip(pieces, placements, context_only):
    segment = segment + 1 if row == previous_row else 1
    previous_row = row
    span = slice(column, column + len(inputs))
    batch["inputs"][row, span] = inputs
    batch["targets"][row, span] = targets
    batch["segment_ids"][row, span] = segment
    batch["positions"][row, span] = np.arange(len(inputs))
    batch["weights"][row, column + skip:column + len(inputs)] = 1.0
  return batch


def contiguous_rows(tokens: np.ndarray, length: int) -> dict[str, np.ndarray]:
  """nanoGPT-style rows: one token stream cut into consecutive windows of T + 1.

  tokens: [L], e.g. documents joined with EOS between them. Row k is the window
  tokens[k*T : k*T + T + 1]: 'inputs' its first T tokens, 'targets' its last T.
  Consecutive windows share their boundary token, so inputs (and targets) of
  successive rows never overlap and every adjacent pair is a target exactly once
  up to the last full row; a tail too short for a full row is dropped. There are
  no segment ids: attention and targets run across document boundaries.

  Returns {'inputs', 'targets'} int32, each [N, T] with N = (L - 1) // T.
  """
  if length <= 0:
    raise ValueError(f"row length must be positive, got {length}")
  tokens = np.asarray(tokens)
  num_rows = max(0, (len(tokens) - 1) // length)
  index = (np.arange(num_rows) * length)[:, None] + np.arange(length + 1)[None, :]
  windows = tokens[index].astype(np.int32).reshape(num_rows, length + 1)
  return {"inputs": windows[:, :-1], "targets": windows[:, 1:]}
