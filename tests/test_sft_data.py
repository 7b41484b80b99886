"""Supervised fine-tuning rows: the template by token counts, completion-only loss, packing."""

import jax
import jax.numpy as jnp
import numpy as np

from decoding_models import BASE, decoder_and_params
from transformer_jax.data.tasks import sft_data
from transformer_jax.objectives import objective as objective_lib
from transformer_jax.objectives.causal_lm import CausalLmObjective

EOS, PAD = 10, 0


def test_the_template_weights_the_completion_and_its_eos_only():
  inputs, targets, weights = sft_data.example(np.array([3, 4, 5]), np.array([6, 7]), EOS)
  # prompt <eos> completion <eos>, shifted: targets are what each position predicts.
  np.testing.assert_array_equal(inputs, [3, 4, 5, EOS, 6, 7])
  np.testing.assert_array_equal(targets, [4, 5, EOS, 6, 7, EOS])
  np.testing.assert_array_equal(weights, [0, 0, 0, 1, 1, 1])


def test_changing_a_prompt_tokens_target_changes_nothing():
  model, params = decoder_and_params(BASE)
  objective = CausalLmObjective(model)
  inputs, targets, weights = sft_data.example(np.array([3, 4, 5, 6]), np.array([7, 8]), EOS)
  batch = {"inputs": inputs[None], "targets": targets[None], "weights": weights[None]}
  sums = jax.jit(lambda p, b: objective_lib.eval_sums(objective, p, b))
  before = sums(params, {k: jnp.asarray(v) for k, v in batch.items()})
  changed = dict(batch, targets=batch["targets"].copy())
  changed["targets"][0, 1] = 9  # The target of a prompt position.
  after = sums(params, {k: jnp.asarray(v) for k, v in changed.items()})
  assert float(after["loss_sum"]) == float(before["loss_sum"])
  changed["targets"][0, 4] = 9  # A completion position's: now it counts.
  assert float(sums(params, {k: jnp.asarray(v) for k, v in changed.items()})["loss_sum"]) != \
      float(before["loss_sum"])


def test_pairs_pack_into_rows_with_their_own_segments_and_positions():
  examples = [sft_data.example(np.array(p), np.array(c), EOS)
              for p, c in (([1, 2], [3]), ([4], [5, 6]), ([7, 8, 9], [1, 2, 3, 4, 5, 6]))]
  rows = sft_data.pack(examples, length=10, pad=PAD)
  # 4 + 4 tokens fit a row of 10; the third pair (10 tokens) takes the next row.
  np.testing.assert_array_equal(rows["segment_ids"], [[1, 1, 1, 1, 2, 2, 2, 2, 0, 0],
                                                      [1] * 10])
  np.testing.assert_array_equal(rows["positions"][0], [0, 1, 2, 3, 0, 1, 2, 3, 0, 0])
  np.testing.assert_array_equal(rows["inputs"][0], [1, 2, EOS, 3, 4, EOS, 5, 6, PAD, PAD])
  np.testing.assert_array_equal(rows["weights"][0], [0, 0, 1, 1, 0, 1, 1, 1, 0, 0])
  # A pair longer than a row is dropped.
  long = sft_data.example(np.arange(1, 10), np.array([1, 2]), EOS)
  assert len(sft_data.pack([long], length=10, pad=PAD)["inputs"]) == 0


def test_jsonl_pairs_read_their_target_field(tmp_path):
  from transformer_jax.data.corpora import sources  # pylint: disable=import-outside-toplevel
  path = tmp_path / "pairs.jsonl"
  path.write_text('{"prompt": "Hi.", "answer": "你好。"}\n{"prompt": "Bye.", "answer": "再见。"}\n')
  corpus = sources.read_documents(str(path), "jsonl", text_field="prompt", target_field="answer")
  assert [(d.text, d.target) for d in corpus.documents] == [("Hi.", "你好。"), ("Bye.", "再见。")]
