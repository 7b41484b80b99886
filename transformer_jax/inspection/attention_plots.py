"""Attention weights as pictures: one PNG per layer, its heads as a grid, tokens as tick labels.

`write_maps(directory, name, weights [L, H, T, S], query_labels, key_labels, title)`
writes `<name>.npy` (the weights as given, float32) and `<name>_layer_<l>.png` for
every layer l: head h is panel h (row-major), row t is query t, column s is key s,
the colour the weight (0 to 1, one scale for every panel).

Drawing uses matplotlib's Agg canvas directly (no pyplot, no display, no global
backend). Tick labels need a font that has their characters: matplotlib ships only
DejaVu, which has no Chinese. `label_font` adds installed fonts that draw what the
default cannot (a CJK font such as Noto Sans CJK or WenQuanYi, when one is installed)
for matplotlib's per-glyph fallback; characters no installed font draws are written as
\\uXXXX escapes, and the log says so once.
"""

from __future__ import annotations

import math
import os
from typing import Optional, Sequence

import numpy as np
from absl import logging
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font

_CHARMAPS: dict[str, frozenset[int]] = {}
_WARNED: set[str] = set()
FONT_HINT = "install a CJK font (e.g. Debian's fonts-noto-cjk) to see them"


def visible(text: str) -> str:
  """A token's text as a tick label: spaces as '␣', line breaks and tabs escaped."""
  return text.replace(" ", "\u2423").replace("\n", "\\n").replace("\t", "\\t") or "''"


def token_labels(tokenizer, ids: Sequence[int]) -> list[str]:
  """Each token's own text; a byte-level token that is part of a character (it decodes to
  U+FFFD alone) is shown as #id."""
  labels = []
  for token in ids:
    text = tokenizer.decode([int(token)])
    labels.append(f"#{int(token)}" if "\ufffd" in text else text)
  return labels


def _charmap(path: str) -> frozenset[int]:
  if path not in _CHARMAPS:
    try:
      _CHARMAPS[path] = frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):
      _CHARMAPS[path] = frozenset()
  return _CHARMAPS[path]


def label_font(labels: Sequence[str]) -> tuple[Optional[list[str]], set[str]]:
  """(font families for the labels: matplotlib's default, then installed fonts that draw
  the characters it cannot, for matplotlib's per-glyph fallback; or None when the default
  draws everything), and the characters no installed font draws."""
  needed = {c for label in labels for c in label if not c.isspace()}
  default = font_manager.FontProperties()
  missing = {c for c in needed if ord(c) not in _charmap(font_manager.findfont(default))}
  if not missing:
    return None, set()
  families = [default.get_family()[0]]
  # LastResort maps every code point to a placeholder box: it draws nothing readable.
  entries = sorted({(entry.name, entry.fname) for entry in font_manager.fontManager.ttflist
                    if "lastresort" not in os.path.basename(entry.fname).lower()})
  while missing:
    covered = {name: {c for c in missing if ord(c) in _charmap(path)}
               for name, path in entries if name not in families}
    best = max(covered, key=lambda name: len(covered[name]), default=None)
    if best is None or not covered[best]:
      break
    families.append(best)
    missing -= covered[best]
  return (families if len(families) > 1 else None), missing


def _escaped(label: str, missing: set[str]) -> str:
  return "".join(f"\\u{ord(c):04x}" if c in missing else c for c in label)


def _draw_layer(weights: np.ndarray, query_labels: Sequence[str], key_labels: Sequence[str],
                title: str, path: str, families: Optional[list[str]]) -> None:
  """weights [H, T, S] -> one PNG with a panel per head."""
  heads, length, keys = weights.shape
  columns = math.ceil(math.sqrt(heads))
  rows = math.ceil(heads / columns)
  panel = min(max(2.5, 0.22 * max(length, keys)), 9.0)  # Inches: room for each tick label.
  figure = Figure(figsize=(columns * panel + 1.2, rows * panel + 0.8), dpi=100,
                  layout="constrained")
  FigureCanvasAgg(figure)
  font = {} if families is None else {"fontfamily": families}
  size = max(4.0, min(9.0, 260.0 / max(length, keys, 1)))
  image = None
  for head in range(heads):
    axes = figure.add_subplot(rows, columns, head + 1)
    image = axes.imshow(weights[head], vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto",
                        interpolation="nearest")
    axes.set_title(f"head {head}", fontsize=9)
    axes.set_xticks(range(keys))
    axes.set_yticks(range(length))
    axes.set_xticklabels(key_labels, rotation=90, fontsize=size, **font)
    axes.set_yticklabels(query_labels, fontsize=size, **font)
  figure.suptitle(title, fontsize=10)
  figure.colorbar(image, ax=figure.axes, shrink=0.6, label="attention weight")
  figure.savefig(path)


def write_maps(directory: str, name: str, weights: np.ndarray, query_labels: Sequence[str],
               key_labels: Sequence[str], title: str,
               axes_note: str = "rows: queries, columns: keys") -> list[str]:
  """Writes <name>.npy (weights [L, H, T, S]) and one <name>_layer_<l>.png per layer,
  titled '<title>, layer <l>' over axes_note; returns the PNG paths."""
  weights = np.asarray(weights, np.float32)
  layers, _, length, keys = weights.shape
  if (length, keys) != (len(query_labels), len(key_labels)):
    raise ValueError(f"weights [.., {length}, {keys}] need {length} query and {keys} key "
                     f"labels, got {len(query_labels)} and {len(key_labels)}")
  os.makedirs(directory, exist_ok=True)
  np.save(os.path.join(directory, f"{name}.npy"), weights)
  query_labels = [visible(label) for label in query_labels]
  key_labels = [visible(label) for label in key_labels]
  families, missing = label_font(list(query_labels) + list(key_labels))
  if missing:
    query_labels = [_escaped(label, missing) for label in query_labels]
    key_labels = [_escaped(label, missing) for label in key_labels]
    shown = "".join(sorted(missing)[:12])
    if shown not in _WARNED:
      _WARNED.add(shown)
      logging.warning("no installed font draws %s%s: tick labels show those characters as "
                      "\\uXXXX escapes; %s", shown, "..." if len(missing) > 12 else "",
                      FONT_HINT)
  paths = []
  for layer in range(layers):
    path = os.path.join(directory, f"{name}_layer_{layer}.png")
    _draw_layer(weights[layer], query_labels, key_labels,
                f"{title}, layer {layer}\n{axes_note}", path, families)
    paths.append(path)
  return paths


def write_self_attention(directory: str, model, params, tokenizer,
                         ids: Sequence[int]) -> list[str]:
  """Runs `model` over one row of `ids` with its attention weights returned and writes them
  as <directory>/self_attention.npy [L, H, T, T] and one PNG per layer (clm, mlm)."""
  import jax  # pylint: disable=import-outside-toplevel
  out = jax.jit(lambda params, tokens: model.apply(
      {"params": params}, tokens, deterministic=True, return_attention_weights=True))(
          params, np.asarray([ids], np.int32))
  labels = token_labels(tokenizer, ids)
  paths = write_maps(directory, "self_attention", np.asarray(out.attention_weights)[:, 0],
                     labels, labels, "self-attention")
  logging.info("wrote %d attention maps and self_attention.npy to %s", len(paths), directory)
  return paths
