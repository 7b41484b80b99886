"""Long token arrays cut to the model's length: training pieces and evaluation windows.

`chunk_document` splits one document into pieces that fit a row (for packing);
`sliding_windows` lays out one long held-out text for sliding-window perplexity,
where every target is scored exactly once with as much left context as fits.

Axis legend: L tokens in the text, T row length, N rows.
"""

import numpy as np


def chunk_document(tokens: np.ndarray, length: int, overlap: int) -> list[np.ndarray]:
  """Pieces of at most `length` tokens; consecutive pieces share `overlap` tokens.

  tokens: [L]. Piece k starts at k * (length - overlap); the last piece ends at
  the end of the document and may be shorter, so together the pieces cover every
  token. A document of at most `length` tokens comes back whole, as one piece.
  Pieces are views of `tokens`, not copies.
  """
  if length <= 0:
    raise ValueError(f"chunk length must be positive, got {length}")
  if not 0 <= overlap < length:
    # overlap == length would never advance.
    raise ValueError(f"data.chunk_overlap must be in [0, {length}) for pieces of "
                     f"{length} tokens, got {overlap}")
  tokens = np.asarray(tokens)
  if len(tokens) <= length:
    return [tokens]
  step = length - overlap
  # Enough pieces for the last one to reach the end: ceil((L - T) / step) after the first.
  num_pieces = 1 + -(-(len(tokens) - length) // step)
  return [tokens[k * step:k * step + length] for k in range(num_pieces)]


def sliding_windows(tokens: np.ndarray, length: int, stride: int) -> dict[str, np.ndarray]:
  """Rows for sliding-window perplexity over one long text.

  tokens: [L]. Row k reads the window tokens[k*stride : k*stride + T + 1]:
  'inputs' its first T tokens, 'targets' its last T. The first row scores all of
  its targets; every later row scores only its last `stride` targets, the ones no
  earlier row reached, so each of those sees at least T - stride + 1 tokens of
  context. Together the rows score each of the L - 1 targets tokens[1:] exactly
  once. The final row is padded with id 0 and weight 0 where the text runs out;
  padding only ever follows the real tokens, so causal attention keeps it from
  changing any scored logit. stride == T gives non-overlapping windows.

  Returns {'inputs', 'targets'} int32 and {'weights'} float32, each [N, T]; N is 0
  for a text of fewer than 2 tokens (nothing to score).
  """
  if not 0 < stride <= length:
    # stride > T would skip targets; stride <= 0 would never advance.
    raise ValueError(f"eval.stride must be in (0, {length}] for windows of {length} "
                     f"tokens, got {stride}")
  tokens = np.asarray(tokens)
  num_targets = len(tokens) - 1
  if num_targets < 1:
    empty = np.zeros((0, length), np.int32)
    return {"inputs": empty, "targets": empty.copy(),
            "weights": np.zeros((0, length), np.float32)}
  # Row k's targets are positions k*stride + 1 ... k*stride + T; the last row is
  # the first one whose targets reach position L - 1.
  num_rows = 1 + max(0, -(-(num_targets - length) // stride))
  starts = np.arange(num_rows) * stride
  index = starts[:, None] + np.arange(length + 1)[None, :]  # [N, T + 1]
  windows = np.where(index < len(tokens), tokens[np.minimum(index, num_targets)], 0)
  windows = windows.astype(np.int32)
  column = np.arange(length)[None, :]
  # Columns before T - stride were already scored by the previous row.
  first_new_column = np.where(np.arange(num_rows) == 0, 0, length - stride)[:, None]
  is_real_target = index[:, 1:] < len(tokens)
  weights = (column >= first_new_column) & is_real_target
  return {"inputs": windows[:, :-1], "targets": windows[:, 1:],
          "weights": weights.astype(np.float32)}
