"""The stack of L Transformer blocks: unrolled, rematerialised, or one block scanned over L.

Unrolled (default), every layer is its own submodule `block_i` and its own piece of
the compiled program. `model.remat` recomputes a block's activations in the backward
pass instead of keeping them (`full`: keep only the block's input; `save_dots`: keep
the matmul outputs, recompute the rest), trading compute for memory.
`model.scan_layers` compiles one block and runs it L times in a `nn.scan`: compile
time no longer grows with depth; the parameters become one submodule `blocks` whose
arrays have a leading layer axis (logical name 'layers').

`stack` and `unstack` convert parameter trees (and anything shaped like them, such
as Adam's moments, boxed or not) between the two layouts, so a model initialises
the same in both and checkpoints of either layout serve the other.
"""

from __future__ import annotations

import re
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from transformer_jax.config_sections import ModelConfig
from transformer_jax.models import kv_cache
from transformer_jax.models.attention import PrefixKV
from transformer_jax.models.block import TransformerBlock
from transformer_jax.models.outputs import BlockOutput

REMAT_POLICIES = {
    "full": jax.checkpoint_policies.nothing_saveable,
    "save_dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}
SCANNED = "blocks"  # The scanned layout's submodule.
LAYER_AXIS = "layers"  # The logical name of its leading axis.
_BLOCK = re.compile(r"block_(\d+)")


class _FlagBlock(TransformerBlock):
  """A block whose Python flags are attributes, so every call argument is an array (or
  None): what `nn.remat` and `nn.scan` need."""
  deterministic: bool = True
  return_attention_weights: bool = False

  def __call__(self, x, mask, positions, encoded, cross_mask, cache=None,  # pylint: disable=arguments-differ
               prefix=None) -> BlockOutput:
    return super().__call__(x, mask, deterministic=self.deterministic, positions=positions,
                            encoded=encoded, cross_mask=cross_mask, cache=cache,
                            prefix=prefix,
                            return_attention_weights=self.return_attention_weights)


class _ScanStep(_FlagBlock):
  """One scan step: carry the hidden states, emit the layer's attention weights."""

  def __call__(self, x, mask, positions, encoded, cross_mask):  # pylint: disable=arguments-differ
    out = super().__call__(x, mask, positions, encoded, cross_mask)
    return out.hidden_states, (out.attention_weights, out.cross_attention_weights)


def run_blocks(config: ModelConfig, num_layers: int, x: jax.Array, mask, *,
               deterministic: bool, positions: jax.Array, encoded=None, cross_mask=None,
               caches: Optional[Sequence[kv_cache.LayerCache]] = None,
               prefix: Optional[Sequence[PrefixKV]] = None,
               return_attention_weights: bool = False,
               constrain=lambda h: h) -> tuple[jax.Array, list[BlockOutput]]:
  """Applies the L blocks inside the calling module's compact method (so their
  parameters are that module's `block_i`, or `blocks` when scanned).

  Returns (hidden states, one BlockOutput per layer; scanned: one whose weights are
  stacked [L, ...]). constrain(h): applied to the hidden states between blocks.
  """
  c = config
  flags = dict(config=c, num_layers=num_layers, deterministic=deterministic,
               return_attention_weights=return_attention_weights)
  if c.scan_layers:
    if caches is not None or prefix is not None:
      raise ValueError("model.scan_layers: decode and adapt with the unrolled layout "
                       "(layer_stack.unstack the parameters)")
    step = _ScanStep
    if c.remat != "none":
      step = nn.remat(step, policy=REMAT_POLICIES[c.remat], prevent_cse=False)
    scanned = nn.scan(step, variable_axes={"params": 0}, split_rngs={"params": True,
                                                                       "dropout": True},
                      in_axes=(nn.broadcast,) * 4, length=num_layers,
                      metadata_params={nn.PARTITION_NAME: LAYER_AXIS})
    x, (weights, cross_weights) = scanned(**flags, name=SCANNED)(
        x, mask, positions, encoded, cross_mask)
    return constrain(x), [BlockOutput(hidden_states=x, attention_weights=weights,
                                      cross_attention_weights=cross_weights)]
  block = _FlagBlock
  if c.remat != "none":
    block = nn.remat(block, policy=REMAT_POLICIES[c.remat])
  outputs = []
  for i in range(num_layers):
    out = block(**flags, name=f"block_{i}")(
        x, mask, positions, encoded, cross_mask, None if caches is None else caches[i],
        None if prefix is None else prefix[i])
    x = constrain(out.hidden_states)
    outputs.append(out)
  return x, outputs


def _is_unrolled(node) -> bool:
  return isinstance(node, dict) and any(_BLOCK.fullmatch(str(k)) for k in node)


def _stack_leaves(leaves: Sequence[Any]) -> Any:
  first = leaves[0]
  if isinstance(first, nn.LogicallyPartitioned):
    return first.replace_boxed(jnp.stack([leaf.unbox() for leaf in leaves])).replace(
        names=(LAYER_AXIS,) + tuple(first.names))
  if isinstance(first, jax.ShapeDtypeStruct):
    return jax.ShapeDtypeStruct((len(leaves),) + first.shape, first.dtype)
  return jnp.stack(leaves)


def _unstack_leaf(leaf: Any, index: int) -> Any:
  if isinstance(leaf, nn.LogicallyPartitioned):
    return leaf.replace_boxed(leaf.unbox()[index]).replace(names=tuple(leaf.names)[1:])
  if isinstance(leaf, jax.ShapeDtypeStruct):
    return jax.ShapeDtypeStruct(leaf.shape[1:], leaf.dtype)
  return leaf[index]


def _is_leaf(node) -> bool:
  return isinstance(node, (nn.LogicallyPartitioned, jax.ShapeDtypeStruct))


def _stack_dict(node: dict) -> dict:
  blocks = sorted((k for k in node if _BLOCK.fullmatch(str(k))),
                  key=lambda k: int(_BLOCK.fullmatch(k).group(1)))
  out = {k: v for k, v in node.items() if k not in blocks}
  out[SCANNED] = jax.tree_util.tree_map(lambda *leaves: _stack_leaves(leaves),
                                        *[node[k] for k in blocks], is_leaf=_is_leaf)
  return out


def _unstack_dict(node: dict) -> dict:
  out = {k: v for k, v in node.items() if k != SCANNED}
  first = jax.tree_util.tree_leaves(node[SCANNED], is_leaf=_is_leaf)[0]
  count = (first.unbox() if isinstance(first, nn.LogicallyPartitioned) else first).shape[0]
  for i in range(count):
    out[f"block_{i}"] = jax.tree_util.tree_map(lambda leaf, i=i: _unstack_leaf(leaf, i),
                                               node[SCANNED], is_leaf=_is_leaf)
  return out


def _is_scanned(node) -> bool:
  return isinstance(node, dict) and SCANNED in node


def _convert(tree: Any, matches, convert) -> Any:
  return jax.tree_util.tree_map(lambda node: convert(node) if matches(node) else node, tree,
                                is_leaf=lambda node: matches(node) or _is_leaf(node))


def stack(tree: Any) -> Any:
  """Unrolled -> scanned, anywhere in a pytree (a TrainState's parameters and Adam's
  moments alike): every dict with block_0 .. block_{L-1} gets one `blocks` entry whose
  leaves stack the layers' along a new leading axis."""
  return _convert(tree, _is_unrolled, _stack_dict)


def unstack(tree: Any) -> Any:
  """Scanned -> unrolled: the inverse of `stack`."""
  return _convert(tree, _is_scanned, _unstack_dict)
