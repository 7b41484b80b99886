"""decoding/translator.py on a tiny random EncoderDecoder: strategies agree where they
must, and how sentences are batched does not change what they become."""

import dataclasses

import jax.numpy as jnp
import pytest

from decoding_models import SEQ2SEQ, random_params
from transformer_jax.config_sections import DecodeConfig
from transformer_jax.data.tokenizers.char_tokenizer import CharTokenizer
from transformer_jax.data.tasks.translation_data import TRANSLATION_SPECIAL_TOKENS
from transformer_jax.decoding.translator import Translator
from transformer_jax.models.encoder_decoder import EncoderDecoder

SENTENCES = ["abc", "gfedcba", "d"]
DECODE = DecodeConfig(strategy="greedy", prompt="-", max_new_tokens=8, temperature=1.0,
                      top_k=0, seed=0)


@pytest.fixture(scope="module")
def model_and_tokenizer():
  tokenizer = CharTokenizer(sorted("abcdefg"), special_tokens=TRANSLATION_SPECIAL_TOKENS)
  assert tokenizer.vocab_size == SEQ2SEQ.vocab_size
  model = EncoderDecoder(SEQ2SEQ)
  example = jnp.ones((1, 4), jnp.int32)
  params = random_params(model, example, example, seed=2, stddev=1.0)  # Seed 2: varied outputs.
  return model, params, tokenizer


def _translate(model_and_tokenizer, sentences, batch_size, **decode):
  model, params, tokenizer = model_and_tokenizer
  translator = Translator(model, tokenizer, dataclasses.replace(DECODE, **decode),
                          batch_size=batch_size)
  return translator.translate(params, sentences), translator


@pytest.mark.parametrize("decode", [{"strategy": "greedy"},
                                    {"strategy": "beam", "beam_size": 3}])
def test_batching_does_not_change_translations(model_and_tokenizer, decode):
  together, _ = _translate(model_and_tokenizer, SENTENCES, 2, **decode)  # Last batch padded.
  _, one_at_a_time = _translate(model_and_tokenizer, [], 1, **decode)
  params = model_and_tokenizer[1]
  alone = [one_at_a_time.translate(params, [sentence])[0] for sentence in SENTENCES]
  assert together == alone
  assert len(together) == 3 and len(set(together)) > 1


def test_a_beam_of_one_is_greedy(model_and_tokenizer):
  greedy, _ = _translate(model_and_tokenizer, SENTENCES, 2, strategy="greedy")
  beam, _ = _translate(model_and_tokenizer, SENTENCES, 2, strategy="beam", beam_size=1,
                       length_penalty=0.0)
  assert beam == greedy


def test_sampling_with_a_seed_is_repeatable_and_top_k_1_is_greedy(model_and_tokenizer):
  greedy, _ = _translate(model_and_tokenizer, SENTENCES, 2, strategy="greedy")
  first, _ = _translate(model_and_tokenizer, SENTENCES, 2, strategy="sample", top_p=0.9)
  again, _ = _translate(model_and_tokenizer, SENTENCES, 2, strategy="sample", top_p=0.9)
  assert first == again
  top_1, _ = _translate(model_and_tokenizer, SENTENCES, 2, strategy="sample", top_k=1)
  assert top_1 == greedy


def test_long_sources_are_cut_and_counted(model_and_tokenizer):
  # max_length 12: 11 tokens + EOS fit, 12 are cut to 11 (and end as the 11 do).
  fits, long = "abcdefgabcd", "abcdefgabcde"
  outputs, translator = _translate(model_and_tokenizer, [fits, long], 2)
  assert translator.num_cut == 1
  assert outputs[0] == outputs[1]


def test_no_output_has_special_tokens_and_length_is_capped(model_and_tokenizer):
  outputs, _ = _translate(model_and_tokenizer, SENTENCES, 3, max_new_tokens=4)
  assert all(len(output) <= 4 and set(output) <= set("abcdefg") for output in outputs)


def test_batches_hold_sentences_of_similar_length(model_and_tokenizer):
  model, params, tokenizer = model_and_tokenizer
  translator = Translator(model, tokenizer, DECODE, batch_size=2)
  batches = []
  make_batch = translator._source_batch  # pylint: disable=protected-access
  translator._source_batch = lambda ids: batches.append([len(i) for i in ids]) or make_batch(ids)
  sentences = ["abcdefg", "a", "abcdef", "ab"]
  outputs = translator.translate(params, sentences)
  assert batches == [[1, 2], [6, 7]]
  assert outputs == [translator.translate(params, [s])[0] for s in sentences]
