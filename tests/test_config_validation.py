"""configs/clm.py presets and `configuration.validate`: every bad field is named."""

import sys

import pytest
from absl import flags
from ml_collections import config_flags

from conftest import REPO
from configs import clm, mlm
from transformer_jax import configuration
from transformer_jax.errors import ConfigError

# config_flags loads config files with importlib's deprecated load_module().
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")


def _tiny_with(path: str, value):
  config = mlm.get_config("tiny")  # Lists the masked-LM fields as well as clm's.
  if "." not in path:
    config[path] = value
    return config
  section, field = path.split(".")
  setattr(config[section], field, value)
  return config


def _parse_flags(monkeypatch, *overrides: str):
  """The config as launch.py's flags build it: tiny preset, then command-line overrides."""
  argv = ["launch.py", f"--config={REPO / 'configs' / 'clm.py'}:tiny", *overrides]
  monkeypatch.setattr(sys, "argv", argv)  # config_flags reads the overrides from sys.argv.
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", flag_values=values, lock_config=True)
  values(argv)
  return values.config


@pytest.mark.parametrize("path, value, field", [
    ("model.num_heads", 3, "model.num_heads"),  # 3 does not divide model_dim 32.
    ("train.learning_rate", -1e-3, "train.learning_rate"),
    ("decode.strategy", "beam", "decode.strategy"),
    ("train.decay_steps", 2, "train.decay_steps"),  # == warmup_steps of the tiny preset.
    ("train.decay_steps", 1, "train.decay_steps"),  # < warmup_steps.
    ("model.num_layerz", 3, "model.num_layerz"),  # Unknown field.
    ("train.label_smoothing", 1.0, "train.label_smoothing"),
    ("model.num_encoder_layers", -1, "model.num_encoder_layers"),
    ("model.num_token_types", -2, "model.num_token_types"),
    ("data.mask_probability", 1.5, "data.mask_probability"),
    ("data.random_token_probability", 0.3, "data.random_token_probability"),  # 0.8 + 0.3 > 1.
    ("experiment", "gan", "experiment"),
])
def test_invalid_field_is_named(path, value, field):
  with pytest.raises(ConfigError) as error:
    configuration.validate(_tiny_with(path, value))
  assert error.value.field == field
  assert str(error.value).startswith(f"config.{field}: ")


def test_heads_message_names_both_fields():
  with pytest.raises(ConfigError, match=r"^config\.model\.num_heads: 3 heads do not divide "
                     r"model\.model_dim=32$"):
    configuration.validate(_tiny_with("model.num_heads", 3))


def test_unknown_preset_raises_value_error():
  with pytest.raises(ValueError, match="unknown preset 'nope' for configs/clm.py"):
    clm.get_config("nope")


@pytest.mark.parametrize("preset", clm.PRESETS)
def test_every_preset_validates(preset):
  cfg = configuration.validate(clm.get_config(preset))
  assert cfg.model.vocab_size == 0  # Derived later, from the tokenizer.
  assert cfg.train.decay_steps == cfg.train.num_steps
  assert cfg.eval.batch_size == cfg.train.batch_size


def test_no_preset_is_default():
  assert configuration.validate(clm.get_config("")) == configuration.validate(
      clm.get_config("default"))


def test_baby_preset_is_nanogpt_cpu_command():
  """nanoGPT README, shakespeare_char on a CPU:

  python train.py config/train_shakespeare_char.py --device=cpu --compile=False
    --eval_iters=20 --log_interval=1 --block_size=64 --batch_size=12 --n_layer=4
    --n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0
  with train_shakespeare_char.py (learning_rate 1e-3, min_lr 1e-4, beta2 0.99,
  warmup_iters 100, eval_interval 250) and train.py's defaults (beta1 0.9,
  weight_decay 0.1, grad_clip 1.0, bias False; the MLP is 4 * n_embd wide).
  """
  cfg = configuration.validate(clm.get_config("baby"))
  m, t = cfg.model, cfg.train
  assert (m.num_layers, m.num_heads, m.model_dim, m.mlp_dim, m.max_length) == (4, 4, 128, 512, 64)
  assert (m.dropout_rate, m.use_bias) == (0.0, False)
  assert (t.batch_size, t.num_steps, t.decay_steps, t.warmup_steps) == (12, 2000, 2000, 100)
  assert (t.learning_rate, t.end_learning_rate) == (1e-3, 1e-4)
  assert (t.adam_beta1, t.adam_beta2) == (0.9, 0.99)
  assert (t.weight_decay, t.grad_clip_norm) == (0.1, 1.0)
  assert (t.eval_every_steps, cfg.eval.num_batches) == (250, 20)


def test_num_steps_override_moves_decay_steps(monkeypatch):
  cfg = configuration.validate(_parse_flags(monkeypatch, "--config.train.num_steps=50"))
  assert (cfg.train.num_steps, cfg.train.decay_steps) == (50, 50)


def test_decay_steps_override_leaves_num_steps(monkeypatch):
  cfg = configuration.validate(_parse_flags(monkeypatch, "--config.train.decay_steps=15"))
  assert (cfg.train.num_steps, cfg.train.decay_steps) == (20, 15)
  cfg = configuration.validate(_parse_flags(monkeypatch, "--config.train.decay_steps=15",
                                            "--config.train.num_steps=30"))
  assert (cfg.train.num_steps, cfg.train.decay_steps) == (30, 15)


def test_eval_batch_size_follows_train_batch_size_until_overridden(monkeypatch):
  cfg = configuration.validate(_parse_flags(monkeypatch, "--config.train.batch_size=4"))
  assert (cfg.train.batch_size, cfg.eval.batch_size) == (4, 4)
  cfg = configuration.validate(_parse_flags(monkeypatch, "--config.eval.batch_size=4"))
  assert (cfg.train.batch_size, cfg.eval.batch_size) == (8, 4)
