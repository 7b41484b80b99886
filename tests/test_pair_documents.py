"""A language model on a parallel corpus's sides (`data.pair_documents=sides`, the bilingual
base configs/clm.py:tatoeba) and few-shot prompts for sft (`eval.few_shot_examples`)."""

import dataclasses

import pytest
import tokenizers

from conftest import run_launch
from configs import clm as clm_configs
from configs import sft as sft_configs
from transformer_jax import configuration
from transformer_jax.data.tasks import lm_data, sft_data, translation_data
from transformer_jax.data.tokenizers.char_tokenizer import CharTokenizer
from transformer_jax.decoding import few_shot
from transformer_jax.errors import ConfigError

# Sources repeat with several targets, as Tatoeba's do; one target repeats too.
PAIRS = [("Hi.", "你好。"), ("Hi.", "您好。"), ("Run.", "跑。"), ("Go.", "走。"),
         ("Stop.", "停。"), ("Wait.", "等等。"), ("Go on.", "继续。"), ("Help!", "救命！"),
         ("Jump.", "跳。"), ("Come.", "来。"), ("Sit.", "坐。"), ("Eat.", "吃。"),
         ("Eat!", "吃。")]


def _tatoeba_tiny(tmp_path, **overrides):
  """configs/clm.py:tatoeba at the tests' size on PAIRS, validated."""
  path = tmp_path / "pairs.tsv"
  path.write_text("".join(f"{en}\t{zh}\tCC-BY 2.0\n" for en, zh in PAIRS), encoding="utf-8")
  config = clm_configs.get_config("tatoeba")
  clm_configs.make_tiny(config, num_steps=4, max_length=32)
  config.data.path = str(path)
  config.data.vocab_size = 300
  config.data.validation_fraction = 0.2
  config.data.test_fraction = 0.2
  config.mesh.num_cpu_devices = 0
  config.train.steps_per_call = 1
  config.train.batch_size = 2
  for dotted, value in overrides.items():
    section, field = dotted.split(".")
    setattr(config[section], field, value)
  return configuration.validate(config)


def test_sides_are_the_pairs_of_each_split_as_separate_documents(tmp_path):
  cfg = _tatoeba_tiny(tmp_path)
  pairs = translation_data.read_splits(cfg.data, cfg.train.seed, "sft")
  sides = lm_data.pair_sides(cfg.data, cfg.train.seed)
  for split in ("train", "validation", "test"):
    expected = {side for pair in pairs[split] for side in (pair.text, pair.target)}
    texts = [doc.text for doc in sides[split]]
    assert sorted(texts) == sorted(expected), split  # Each distinct side once.
  held_out = {p.text for split in ("validation", "test") for p in pairs[split]}
  assert not held_out & {doc.text for doc in sides["train"]}  # No held-out source trains.
  assert all(pairs[split] for split in pairs)


def test_sides_are_shuffled_by_the_seed_so_no_translation_follows_its_sentence(tmp_path):
  cfg = _tatoeba_tiny(tmp_path)
  first = [d.text for d in lm_data.pair_sides(cfg.data, cfg.train.seed)["train"]]
  assert first == [d.text for d in lm_data.pair_sides(cfg.data, cfg.train.seed)["train"]]
  assert first != [d.text for d in lm_data.pair_sides(cfg.data, cfg.train.seed + 1)["train"]]
  in_pair_order = list(dict.fromkeys(
      side for pair in translation_data.read_splits(cfg.data, cfg.train.seed, "sft")["train"]
      for side in (pair.text, pair.target)))
  assert first != in_pair_order and sorted(first) == sorted(in_pair_order)


def test_the_tatoeba_base_and_sft_split_the_shipped_pairs_alike():
  base = configuration.validate(clm_configs.get_config("tatoeba"))
  sft = configuration.validate(sft_configs.get_config())
  assert sft.train.init_from == "runs/clm-tatoeba"
  for field in ("path", "format", "validation_fraction", "test_fraction",
                "normalize_whitespace", "unicode_normalization"):
    assert getattr(base.data, field) == getattr(sft.data, field), field
  assert base.train.seed == sft.train.seed == clm_configs.PAIR_SPLIT_SEED
  assert dataclasses.asdict(base.model) == dataclasses.asdict(sft.model)  # Warm start fits.
  pairs = translation_data.read_splits(sft.data, sft.train.seed, "sft")
  sides = lm_data.pair_sides(base.data, base.train.seed)
  assert len(sides["train"]) > 40_000  # Both languages of ~26k pairs (distinct sides).
  test_sources = {pair.text for pair in pairs["test"]}
  assert not test_sources & {doc.text for doc in sides["train"]}


def test_the_lora_sft_preset_differs_from_full_sft_only_in_the_adapter_and_its_rate():
  full = configuration.validate(sft_configs.get_config())
  lora = configuration.validate(sft_configs.get_config("lora"))
  assert (lora.finetune.method, lora.finetune.lora_rank, lora.finetune.lora_alpha) == (
      "lora", 64, 128)
  assert lora.finetune.lora_targets == full.finetune.lora_targets == ".*/kernel"
  assert (lora.train.learning_rate, lora.train.end_learning_rate) == (2e-3, 2e-4)
  same_schedule = dataclasses.replace(lora.train, learning_rate=full.train.learning_rate,
                                      end_learning_rate=full.train.end_learning_rate)
  assert dataclasses.replace(lora, finetune=full.finetune, train=same_schedule) == full


@pytest.mark.slow  # A launch.py run; the preset's data is tested in-process above.
def test_the_tatoeba_preset_trains_at_tiny_size_from_launch(tmp_path):
  path = tmp_path / "pairs.tsv"
  path.write_text("".join(f"{en}\t{zh}\tCC-BY 2.0\n" for en, zh in PAIRS * 4), encoding="utf-8")
  workdir = tmp_path / "base"
  result = run_launch(
      "--config=configs/clm.py:tatoeba", f"--workdir={workdir}", f"--config.data.path={path}",
      "--config.model.num_layers=1", "--config.model.model_dim=32", "--config.model.mlp_dim=64",
      "--config.model.num_heads=2", "--config.model.max_length=32", "--config.data.vocab_size=300",
      "--config.train.num_steps=4", "--config.train.warmup_steps=1", "--config.train.batch_size=2",
      "--config.train.steps_per_call=1", "--config.train.eval_every_steps=4",
      "--config.train.checkpoint_every_steps=4", "--config.mesh.num_cpu_devices=0",
      "--config.eval.num_batches=1", "--config.eval.batch_size=2",
      "--config.decode.max_new_tokens=4")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "pair sides as documents" in result.stderr
  tokenizer = tokenizers.Tokenizer.from_file(str(workdir / "tokenizer.json"))
  assert len(tokenizer.encode("走。").ids) < len("走。".encode())  # Its BPE merged Chinese bytes.


def test_pair_sides_and_few_shot_prompts_are_refused_where_they_do_not_apply(tmp_path):
  with pytest.raises(ConfigError, match="data.pair_documents"):
    _tatoeba_tiny(tmp_path, **{"data.packing": "stream"})
  config = sft_configs.get_config("tiny")
  config.data.pair_documents = "sides"
  with pytest.raises(ConfigError, match="data.pair_documents"):
    configuration.validate(config)
  with pytest.raises(ConfigError, match="eval.few_shot_examples"):
    _tatoeba_tiny(tmp_path, **{"eval.few_shot_examples": 2})
  config = sft_configs.get_config("tiny")
  config.eval.few_shot_examples = -1
  with pytest.raises(ConfigError, match="eval.few_shot_examples"):
    configuration.validate(config)


def _text(tokenizer, ids):
  """The ids as text, <eos> spelled out."""
  eos = tokenizer.token_id("<eos>")
  return "".join("<eos>" if i == eos else tokenizer.decode([i]) for i in ids)


def test_a_few_shot_prompt_is_the_shots_then_the_prompt_in_the_sft_template():
  tokenizer = CharTokenizer.from_text("".join(a + b for a, b in PAIRS), ("<pad>", "<eos>"))
  shots = [(tokenizer.encode(p), tokenizer.encode(c)) for p, c in (("Hi.", "你好。"),
                                                                   ("Run.", "跑。"))]
  eos = tokenizer.token_id("<eos>")
  ids, cut = few_shot.prompt_ids(shots, tokenizer.encode("Go."), eos, room=64)
  assert _text(tokenizer, ids) == "Hi.<eos>你好。<eos>Run.<eos>跑。<eos>Go.<eos>" and not cut
  # Room for one shot: the first is left out, whole.
  ids, cut = few_shot.prompt_ids(shots, tokenizer.encode("Go."), eos, room=12)
  assert _text(tokenizer, ids) == "Run.<eos>跑。<eos>Go.<eos>" and cut
  ids, cut = few_shot.prompt_ids(shots, tokenizer.encode("Go on."), eos, room=4)
  assert _text(tokenizer, ids) == "on.<eos>" and cut
  ids, cut = few_shot.prompt_ids([], tokenizer.encode("Go."), eos, room=4)
  assert _text(tokenizer, ids) == "Go.<eos>" and not cut


def test_shots_are_drawn_by_the_seed_from_the_training_pairs():
  pairs = [(en, zh) for en, zh in PAIRS]
  drawn = sft_data.choose_shots(pairs, 3, seed=0)
  assert drawn == sft_data.choose_shots(pairs, 3, seed=0) and len(set(drawn)) == 3
  assert set(drawn) <= set(pairs) and drawn != sft_data.choose_shots(pairs, 3, seed=1)
  assert sft_data.choose_shots(pairs, 0, seed=0) == []
  assert sorted(sft_data.choose_shots(pairs, 99, seed=0)) == sorted(pairs)


@pytest.mark.slow  # A launch.py run over the 1,430 test pairs; the prompts are tested above.
def test_few_shot_evaluation_from_launch_writes_completions_of_the_shot_prompts(sft_run,
                                                                                   tmp_path):
  workdir = tmp_path / "few-shot"
  result = run_launch("--config=configs/sft.py:tiny", f"--workdir={workdir}", "--mode=eval",
                      f"--config.train.init_from={sft_run}", "--config.eval.few_shot_examples=2")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "few-shot prompts: 2 training pairs before each" in result.stderr
  completions = list(workdir.glob("completions_test_step*.txt"))
  # One line per test pair of the shipped Tatoeba split (empty where the tiny GPT
  # wrote <eos> at once).
  assert len(completions) == 1
  assert len(completions[0].read_text(encoding="utf-8").split("\n")) - 1 == 1430
