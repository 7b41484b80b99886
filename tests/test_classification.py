"""Classification: rows by hand, labels, accuracy and macro F1 by hand."""

import jax.numpy as jnp
import numpy as np
import pytest

from transformer_jax.data.tasks import classification_data
from transformer_jax.data.tokenizers.char_tokenizer import CharTokenizer
from transformer_jax.errors import DataError
from transformer_jax.models.outputs import ModelOutput
from transformer_jax.objectives import objective as objective_lib
from transformer_jax.objectives.classification import ClassificationObjective, macro_f1

TOKENIZER = CharTokenizer.from_text("abcdefgh", classification_data.ENCODER_SPECIAL_TOKENS
                                    + ("<eos>",))


def test_rows_follow_each_bodys_layout_and_are_cut_to_length():
  pad, cls, sep, eos = (TOKENIZER.token_id(t) for t in ("<pad>", "<cls>", "<sep>", "<eos>"))
  encoder = classification_data.rows(TOKENIZER, ["abc", "abcdefgh"], 6, encoder=True)
  np.testing.assert_array_equal(encoder["inputs"], [[cls, 0, 1, 2, sep, pad],
                                                    [cls, 0, 1, 2, 3, sep]])
  np.testing.assert_array_equal(encoder["segment_ids"], [[1, 1, 1, 1, 1, 0], [1] * 6])
  decoder = classification_data.rows(TOKENIZER, ["ab"], 4, encoder=False)
  np.testing.assert_array_equal(decoder["inputs"], [[0, 1, eos, pad]])


def test_a_label_the_training_data_never_had_is_one_line():
  with pytest.raises(DataError) as error:
    classification_data.label_ids([("x", "pos"), ("y", "meh")], ("neg", "pos"), "test")
  assert str(error.value) == ("the test split has labels the training data never had: 'meh' "
                              "(known: neg, pos)")


def test_macro_f1_by_hand():
  # Class 0: TP 2, predicted 3, actual 2 -> F1 0.8; class 1: TP 1, predicted 1, actual 2
  # -> 2/3; class 2 absent from both -> 1.
  sums = {"true_positive_0": 2, "predicted_0": 3, "actual_0": 2, "true_positive_1": 1,
          "predicted_1": 1, "actual_1": 2, "true_positive_2": 0, "predicted_2": 0,
          "actual_2": 0}
  assert macro_f1(sums, 3) == pytest.approx((0.8 + 2 / 3 + 1) / 3)


class _FixedLogits:
  """Stands in for a classifier: fixed logits for a batch of four rows."""

  def apply(self, variables, inputs, **kwargs):
    del variables, inputs, kwargs
    return ModelOutput(hidden_states=jnp.zeros((4, 1, 1)),
                       logits=jnp.asarray([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 0.0]]))


def test_accuracy_f1_and_loss_count_real_rows_only():
  objective = ClassificationObjective(_FixedLogits(), num_classes=2)
  batch = {"inputs": jnp.zeros((4, 2), jnp.int32), "segment_ids": jnp.ones((4, 2), jnp.int32),
           "labels": jnp.asarray([0, 0, 0, 1]), "weights": jnp.asarray([1.0, 1.0, 1.0, 0.0])}
  sums = objective_lib.eval_sums(objective, None, batch)
  metrics = objective.summarize({k: float(v) for k, v in sums.items()})
  assert metrics["eval_accuracy"] == pytest.approx(2 / 3)  # Row 1 predicts 1; row 4 is filler.
  # Class 0: TP 2, predicted 2, actual 3 -> 0.8; class 1: TP 0, predicted 1, actual 0 -> 0.
  assert metrics["eval_macro_f1"] == pytest.approx(0.4)
  log_softmax = lambda row: np.asarray(row) - np.log(np.exp(row).sum())
  expected = -(log_softmax([2.0, 0.0])[0] + log_softmax([0.0, 1.0])[0]
               + log_softmax([3.0, 0.0])[0]) / 3
  assert metrics["eval_loss"] == pytest.approx(expected, rel=1e-6)
  assert metrics["eval_examples"] == 3
