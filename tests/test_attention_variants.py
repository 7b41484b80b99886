"""Attention variants: scores, grouped key/value heads, fused path, weights, cross-attention."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from transformer_jax.models import attention_scores
from transformer_jax.models.attention import MultiHeadAttention, causal_mask, segment_mask

HEADS, HEAD_DIM, WIDTH = 4, 4, 8  # HEAD_DIM 4: scaling by √K = 2 and back is exact.


def _module(**options) -> MultiHeadAttention:
  return MultiHeadAttention(HEADS, HEAD_DIM, 0.0, True, "float32", 0.02, **options)


def _inputs(batch=2, length=5, seed=0) -> jax.Array:
  return jnp.asarray(np.random.default_rng(seed).normal(size=(batch, length, WIDTH)), jnp.float32)


def _boxed_shapes(module, x, mask, **kwargs) -> dict:
  """The module's parameter shapes and logical names, traced but never run."""
  return jax.eval_shape(lambda: module.init(jax.random.key(1), x, mask, deterministic=True,
                                            **kwargs))["params"]


def _init(module, x, mask, **kwargs) -> dict:
  """Random parameters, drawn in numpy: running `init` op by op would compile every op.

  Stddev 0.5 rather than 0.02 makes attention weights far from uniform, so a wrong
  score or grouping shows.
  """
  generator = np.random.default_rng(0)
  return jax.tree_util.tree_map(
      lambda leaf: generator.normal(0.0, 0.5, leaf.shape).astype(np.float32),
      nn.unbox(_boxed_shapes(module, x, mask, **kwargs)))


def _apply(module, params, x, mask, **kwargs):
  """The outputs, or (outputs, weights) with return_weights=True."""
  out = module.apply({"params": params}, x, mask, deterministic=True, **kwargs)
  return (out.outputs, out.weights) if kwargs.get("return_weights") else out.outputs


def _padding_mask() -> jax.Array:
  """[2, 1, 5, 5]: row 0 has 2 trailing padding tokens, row 1 none."""
  return segment_mask(jnp.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]))


def _todays_attention(params, x, mask):
  """The scaled-dot multi-head attention of the module before variants existed, op for op."""
  def project(inputs, name):
    kernel = params[name]["kernel"]
    y = jnp.dot(inputs.reshape(-1, WIDTH), kernel.reshape(WIDTH, -1))
    return (y + params[name]["bias"].reshape(-1)).reshape(inputs.shape[:2] + kernel.shape[1:])
  q, k, v = project(x, "query"), project(x, "key"), project(x, "value")
  batch, length, heads, head_dim = q.shape
  def heads_first(t):
    return jnp.swapaxes(t, 1, 2).reshape(batch * heads, t.shape[1], head_dim)
  q, k, v = heads_first(q * head_dim**-0.5), heads_first(k), heads_first(v)
  scores = jnp.matmul(q, jnp.swapaxes(k, 1, 2)).astype(jnp.float32)
  scores = scores.reshape(batch, heads, length, k.shape[1])
  scores = jnp.where(mask, scores, jnp.finfo(jnp.float32).min)
  weights = jax.nn.softmax(scores, axis=-1)
  out = jnp.matmul(weights.reshape(batch * heads, length, -1), v)
  out = jnp.swapaxes(out.reshape(batch, heads, length, head_dim), 1, 2)
  y = jnp.dot(out.reshape(-1, heads * head_dim), params["output"]["kernel"].reshape(-1, WIDTH))
  return (y + params["output"]["bias"]).reshape(x.shape)


def test_default_path_is_todays_attention_bit_for_bit():
  x, mask = _inputs(), causal_mask(5) & _padding_mask()
  module = _module()
  names = jax.tree_util.tree_map(lambda p: p.names, _boxed_shapes(module, x, mask),
                                 is_leaf=lambda p: hasattr(p, "names"))
  projection = {"kernel": ("embed", "heads", "head_dim"), "bias": ("heads", "head_dim")}
  # Key/value heads have their own logical name: with GQA they are fewer, so a rule
  # sharding query heads must not be applied to them blindly.
  kv_projection = {"kernel": ("embed", "kv_heads", "head_dim"), "bias": ("kv_heads", "head_dim")}
  assert names == {"query": projection, "key": kv_projection, "value": kv_projection,
                   "output": {"kernel": ("heads", "head_dim", "embed"), "bias": ("embed",)}}
  params = _init(module, x, mask)
  assert params["key"]["kernel"].shape == (WIDTH, HEADS, HEAD_DIM)
  assert params["output"]["kernel"].shape == (HEADS, HEAD_DIM, WIDTH)
  np.testing.assert_array_equal(_apply(module, params, x, mask), _todays_attention(params, x, mask))


def test_dot_equals_scaled_dot_on_prescaled_queries():
  generator = np.random.default_rng(2)
  q = jnp.asarray(generator.normal(size=(2, 5, HEADS, HEAD_DIM)), jnp.float32)
  k = jnp.asarray(generator.normal(size=(2, 7, 2, HEAD_DIM)), jnp.float32)
  dot = attention_scores.dot(q, k)
  assert dot.shape == (2, HEADS, 5, 7) and dot.dtype == jnp.float32
  np.testing.assert_array_equal(attention_scores.scaled_dot(q * HEAD_DIM**0.5, k), dot)
  # Head h reads key head h // 2: compare with an explicit per-head product.
  expected = np.einsum("bthk,bshk->bhts", q, np.repeat(k, 2, axis=2))
  np.testing.assert_allclose(dot, expected, rtol=1e-6, atol=1e-6)


def test_additive_scores_with_groups_match_numpy():
  generator = np.random.default_rng(6)
  def normal(*shape):
    return jnp.asarray(generator.normal(size=shape), jnp.float32)
  q, k = normal(2, 5, HEADS, HEAD_DIM), normal(2, 7, 2, HEAD_DIM)
  query_kernel, key_kernel = normal(HEADS, HEAD_DIM, HEAD_DIM), normal(2, HEAD_DIM, HEAD_DIM)
  vector = normal(HEADS, HEAD_DIM)
  # Head h reads key head h // 2, transformed by that key head's kernel.
  key_features = np.repeat(np.einsum("bsgi,gio->bsgo", k, key_kernel), 2, axis=2)
  query_features = np.einsum("bthi,hio->btho", q, query_kernel)
  hidden = np.tanh(query_features[:, :, None] + key_features[:, None])  # [B, T, S, H, K]
  expected = np.einsum("btshk,hk->bhts", hidden, vector)
  np.testing.assert_allclose(attention_scores.additive(q, k, query_kernel, key_kernel, vector),
                             expected, rtol=1e-5, atol=1e-5)


def test_all_kv_heads_is_multi_head_attention():
  x, mask = _inputs(), causal_mask(5)
  params = _init(_module(), x, mask)
  np.testing.assert_array_equal(_apply(_module(num_kv_heads=HEADS), params, x, mask),
                                _apply(_module(), params, x, mask))


@pytest.mark.parametrize("score", ["scaled_dot", "additive"])
@pytest.mark.parametrize("kv_heads", [1, 2])  # 1: multi-query attention.
def test_query_heads_of_a_group_share_key_and_value(kv_heads, score):
  x, mask = _inputs(), causal_mask(5)
  grouped = _module(score=score, num_kv_heads=kv_heads)
  params = _init(grouped, x, mask)
  assert params["key"]["kernel"].shape == (WIDTH, kv_heads, HEAD_DIM)
  # Multi-head attention whose key/value heads are copies: head h gets kv head h // (H/G).
  copies = HEADS // kv_heads
  tiled = {name: {part: np.repeat(value, copies, axis=0 if part == "bias" else 1)
                  for part, value in params[name].items()} for name in ("key", "value")}
  if score == "additive":
    tiled["additive_key"] = np.repeat(params["additive_key"], copies, axis=0)
  np.testing.assert_allclose(_apply(grouped, params, x, mask),
                             _apply(_module(score=score), {**params, **tiled}, x, mask),
                             rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("score, kv_heads, mask_kind", [
    ("scaled_dot", 0, "causal"), ("scaled_dot", 2, "padding"),
    ("dot", 0, "padding"), ("dot", 1, "causal")])
def test_fused_equals_plain(score, kv_heads, mask_kind):
  x = _inputs()
  mask = causal_mask(5) if mask_kind == "causal" else _padding_mask()
  plain = _module(score=score, num_kv_heads=kv_heads)
  params = _init(plain, x, mask)
  fused = _module(score=score, num_kv_heads=kv_heads, implementation="fused")
  np.testing.assert_allclose(_apply(fused, params, x, mask), _apply(plain, params, x, mask),
                             atol=1e-5, rtol=0)


def test_additive_attention_by_hand():
  """One head, K = D = 2; identity query/key/output projections, value swaps the two features."""
  eye = np.eye(2, dtype=np.float32)
  query_kernel = np.array([[1.0, 0.0], [0.5, -1.0]], np.float32)  # [in, out]: q W_q.
  key_kernel = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
  vector = np.array([1.0, -2.0], np.float32)
  params = {"query": {"kernel": eye[:, None]}, "key": {"kernel": eye[:, None]},
            "value": {"kernel": eye[::-1, None]}, "output": {"kernel": eye[None]},
            "additive_query": query_kernel[None], "additive_key": key_kernel[None],
            "additive_vector": vector[None]}
  queries = np.array([[[1.0, 0.0], [0.0, 1.0]]], np.float32)
  keys = np.array([[[1.0, 1.0], [2.0, -1.0]]], np.float32)
  # q W_q: [1, 0], [0.5, -1];  k W_k: [1, 1], [-1, 2];  their sums for (t, s):
  hidden = np.tanh(np.array([[[2.0, 1.0], [0.0, 2.0]],
                             [[1.5, 0.0], [-0.5, 1.0]]]))
  scores = hidden @ vector  # [t, s]
  weights = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
  values = np.array([[1.0, 1.0], [-1.0, 2.0]])  # Keys with their features swapped.
  module = MultiHeadAttention(1, 2, 0.0, False, "float32", 0.02, score="additive")
  y = module.apply({"params": params}, queries, None, deterministic=True,
                   inputs_kv=keys).outputs
  np.testing.assert_allclose(y[0], weights @ values, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("score", ["scaled_dot", "dot", "additive"])
def test_masked_padding_keys_change_nothing(score):
  x, memory = _inputs(), _inputs(seed=4)
  padded = jnp.concatenate([memory, 7.0 * _inputs(length=2, seed=5)], axis=1)  # [B, 7, D]
  hide_padding = (jnp.arange(7) < 5)[None, None, None]  # [1, 1, 1, S]
  module = _module(score=score, num_kv_heads=2)
  params = _init(module, x, None, inputs_kv=memory)
  np.testing.assert_allclose(_apply(module, params, x, hide_padding, inputs_kv=padded),
                             _apply(module, params, x, None, inputs_kv=memory),
                             rtol=1e-6, atol=1e-6)


def test_returned_weights_are_a_masked_distribution():
  x, mask = _inputs(), causal_mask(5) & _padding_mask()
  params = _init(_module(), x, mask)
  y, weights = _apply(_module(), params, x, mask, return_weights=True)
  np.testing.assert_array_equal(y, _apply(_module(), params, x, mask))
  assert weights.shape == (2, HEADS, 5, 5)
  real_rows = np.asarray(_padding_mask()[:, 0].any(axis=-1))  # Padding rows see nothing.
  sums = np.asarray(weights.sum(axis=-1)).transpose(0, 2, 1)  # [B, T, H]
  np.testing.assert_allclose(sums[real_rows], 1.0, rtol=1e-6)
  hidden = np.broadcast_to(~np.asarray(mask), weights.shape) & real_rows[:, None, :, None]
  assert hidden.any() and (np.asarray(weights)[hidden] == 0).all()


def test_cross_attention_with_other_key_length():
  x, memory = _inputs(), _inputs(length=7, seed=4)
  mask = jnp.ones((1, 1, 5, 7), bool).at[..., 4:].set(False)
  module = _module(num_kv_heads=2)
  params = _init(module, x, mask, inputs_kv=memory)
  assert params["key"]["kernel"].shape == (WIDTH, 2, HEAD_DIM)
  y, weights = _apply(module, params, x, mask, inputs_kv=memory, return_weights=True)
  assert y.shape == (2, 5, WIDTH) and weights.shape == (2, HEADS, 5, 7)
  assert (weights[..., 4:] == 0).all()
  changed = _apply(module, params, x, mask, inputs_kv=memory.at[:, 0].add(1.0))
  assert not np.allclose(changed, y)
  # inputs_kv = x is self-attention.
  np.testing.assert_array_equal(_apply(module, params, x, causal_mask(5), inputs_kv=x),
                                _apply(module, params, x, causal_mask(5)))


@pytest.mark.parametrize("options, deterministic, field", [
    (dict(score="cosine"), True, "model.attention"),
    (dict(implementation="flash"), True, "model.attention_impl"),
    (dict(num_kv_heads=3), True, "model.num_kv_heads"),
    (dict(num_kv_heads=-1), True, "model.num_kv_heads"),
    (dict(score="additive", implementation="fused"), True, "model.attention_impl"),
    (dict(implementation="fused", return_weights=True), True, "model.attention_impl"),
    (dict(implementation="fused"), False, "model.attention_impl"),  # Dropout while training.
])
def test_invalid_options_name_the_field(options, deterministic, field):
  options = dict(options)
  call = {"return_weights": options.pop("return_weights")} if "return_weights" in options else {}
  module = MultiHeadAttention(HEADS, HEAD_DIM, 0.1, True, "float32", 0.02, **options)
  x = _inputs()
  with pytest.raises(ValueError, match=f"^{field}:"):
    module.init({"params": jax.random.key(1), "dropout": jax.random.key(2)}, x, causal_mask(5),
                deterministic=deterministic, **call)
