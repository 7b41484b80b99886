"""--mode=attention: weights that sum to one over the keys and respect the masks, drawn as
one PNG per layer with the weights beside them."""

import struct

import jax
import jax.numpy as jnp
import numpy as np

from conftest import tiny_config
from decoding_models import BASE, random_params
from transformer_jax.run.modes import ModeInputs
from transformer_jax.tasks import clm as clm_experiment
from transformer_jax.inspection import attention_plots
from transformer_jax.models.decoder import Decoder
from transformer_jax.models.encoder import Encoder

TOKENS = jnp.asarray([[3, 1, 4, 1, 5, 9], [2, 7, 1, 8, 0, 0]], jnp.int32)
SEGMENTS = (TOKENS != 0).astype(jnp.int32)


def _png_size(path) -> tuple[int, int]:
  with open(path, "rb") as f:
    header = f.read(24)
  assert header[:8] == b"\x89PNG\r\n\x1a\n"
  return struct.unpack(">II", header[16:24])


def test_weights_sum_to_one_and_respect_causal_and_padding_masks():
  decoder = Decoder(BASE)
  params = random_params(decoder, TOKENS)
  weights = np.asarray(jax.jit(lambda p: decoder.apply(
      {"params": p}, TOKENS, segment_ids=SEGMENTS, deterministic=True,
      return_attention_weights=True).attention_weights)(params))
  assert weights.shape == (2, 2, 4, 6, 6)  # [L, B, H, T, S]
  np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
  future = np.triu(np.ones((6, 6), bool), 1)
  assert (weights[:, 0][..., future] == 0).all()  # Causal.
  assert (weights[:, 1, :, :4][..., future[:4]] == 0).all()
  assert (weights[:, 1, :, :4, 4:] == 0).all()  # Row 1's real tokens never see its padding.
  # A padding query sees no key: uniform weights (not NaN), and nothing reads its output.
  np.testing.assert_allclose(weights[:, 1, :, 4:], 1 / 6, rtol=1e-6)
  encoder = Encoder(BASE)
  params = random_params(encoder, TOKENS)
  weights = np.asarray(encoder.apply({"params": params}, TOKENS, segment_ids=SEGMENTS,
                                     deterministic=True,
                                     return_attention_weights=True).attention_weights)
  np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
  assert (weights[:, 1, :, :4, 4:] == 0).all() and (weights[:, 0] > 0).all()  # Bidirectional.


def test_the_maps_of_a_tiny_run_one_png_per_layer(tiny_run, tmp_path):
  text = "To be, or not to be"
  paths = clm_experiment.attention(tiny_config(), str(tiny_run),
                                   ModeInputs(input_path=text, output_path=str(tmp_path)))
  assert [p.rsplit("/", 1)[1] for p in paths] == ["self_attention_layer_0.png",
                                                  "self_attention_layer_1.png"]
  for path in paths:
    width, height = _png_size(path)
    assert width > 300 and height > 200
  weights = np.load(tmp_path / "self_attention.npy")
  assert weights.shape == (2, 2, len(text), len(text))  # [L, H, T, T]; char tokens.
  np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
  assert (weights[..., np.triu(np.ones((len(text),) * 2, bool), 1)] == 0).all()


def test_labels_show_whitespace_and_escape_what_no_font_draws():
  assert attention_plots.visible(" am\n") == "\u2423am\\n"
  _, missing = attention_plots.label_font(["\U0010fffd"])  # A private-use code point.
  assert missing == {"\U0010fffd"}
  assert attention_plots._escaped("a\U0010fffd", missing) == "a\\u10fffd"
