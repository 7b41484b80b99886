"""What each experiment adds to the generic config checks: the rules of its own fields.

`configuration.validate` applies them after the generic checks, so every experiment's
config is whole and checked before anything is built; the experiments themselves
(`transformer_jax/tasks/`) trust it. An experiment states the row layouts it builds
(`data.packing`), the kinds of named dataset it reads, and whether it decodes with
validation BLEU or beam search; classify adds the rules of its body and soft prompt.
"""

from __future__ import annotations

import dataclasses

from transformer_jax import config_choices as choices
from transformer_jax.config_sections import ExperimentConfig
from transformer_jax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Rules:
  packings: tuple[str, ...]  # The data.packing values it builds; () = it ignores the field.
  dataset_kinds: tuple[str, ...]  # The kinds of named dataset it reads; () = data.path only.
  bleu: bool  # eval.bleu_pairs > 0: validation BLEU of decoded outputs.
  beam: bool  # decode.strategy=beam.


RULES = {
    "clm": Rules(packings=("stream", "documents"), dataset_kinds=(choices.TEXT_DATASET,),
                 bleu=False, beam=True),
    # mlm cuts sentence pairs and classify rows of one text: data.packing is unused.
    "mlm": Rules(packings=(), dataset_kinds=(choices.TEXT_DATASET,), bleu=False, beam=False),
    "seq2seq": Rules(packings=("none", "documents"), dataset_kinds=(), bleu=True, beam=True),
    "classify": Rules(packings=(), dataset_kinds=(choices.LABELLED_DATASET,), bleu=False,
                      beam=False),
    # sft packs its pairs whatever data.packing says.
    "sft": Rules(packings=(), dataset_kinds=(), bleu=True, beam=True),
}
assert tuple(RULES) == choices.EXPERIMENTS, "every experiment has its rules"


def check_dataset_kind(cfg: ExperimentConfig, kinds: tuple[str, ...]) -> None:
  """The named dataset (data.dataset) is of a kind the reader takes."""
  name = cfg.data.dataset
  if name and choices.DATASET_KINDS[name] not in kinds:
    readable = [other for other, kind in choices.DATASET_KINDS.items() if kind in kinds]
    raise ConfigError("data.dataset", f"{name} is a {choices.DATASET_KINDS[name]} dataset, "
                      f"which experiment {cfg.experiment} does not read (it reads "
                      f"{', '.join(readable) or 'data.path only'})")


def _check_classify(cfg: ExperimentConfig) -> None:
  if cfg.model.classifier_body not in choices.CLASSIFIER_BODIES:
    raise ConfigError("model.classifier_body", f"must be one of {choices.CLASSIFIER_BODIES}, "
                      f"got {cfg.model.classifier_body!r}")
  if cfg.model.classifier_pooling not in choices.CLASSIFIER_POOLINGS:
    raise ConfigError("model.classifier_pooling", f"must be one of "
                      f"{choices.CLASSIFIER_POOLINGS}, got {cfg.model.classifier_pooling!r}")
  f, length = cfg.finetune, cfg.model.max_length
  if f.method == "prompt" and f.prompt_length > length - 3:
    raise ConfigError("finetune.prompt_length", f"{f.prompt_length} soft-prompt slots leave "
                      f"no room for text in model.max_length={length} (3 slots at least)")
  if f.method == "prefix" and f.prefix_length > length:
    raise ConfigError("finetune.prefix_length", f"must be at most model.max_length={length}")


def check(cfg: ExperimentConfig) -> None:
  """Raises a ConfigError naming the first field that breaks the experiment's rules."""
  rules = RULES[cfg.experiment]
  if rules.packings and cfg.data.packing not in rules.packings:
    raise ConfigError("data.packing", f"must be one of {rules.packings} for experiment "
                      f"{cfg.experiment}, got {cfg.data.packing!r}")
  if cfg.eval.bleu_pairs and not rules.bleu:
    raise ConfigError("eval.bleu_pairs", "BLEU is available for experiment seq2seq only; "
                      "set it to 0")
  if cfg.decode.strategy == "beam" and not rules.beam:
    beams = [name for name, other in RULES.items() if other.beam]
    raise ConfigError("decode.strategy", f"beam search is available for experiments "
                      f"{', '.join(beams)} only; use greedy or sample")
  check_dataset_kind(cfg, rules.dataset_kinds)
  if cfg.data.train_examples and cfg.experiment != "classify":
    raise ConfigError("data.train_examples", "a subset of labelled training examples is for "
                      "experiment classify; set it to 0")
  if cfg.eval.few_shot_examples and cfg.experiment != "sft":
    raise ConfigError("eval.few_shot_examples", "few-shot prompts are for experiment sft; "
                      "set it to 0")
  if cfg.data.pair_documents == "sides":
    _check_pair_sides(cfg)
  if cfg.experiment == "classify":
    _check_classify(cfg)


def _check_pair_sides(cfg: ExperimentConfig) -> None:
  d = cfg.data
  if cfg.experiment != "clm" or d.packing != "documents" or d.dataset:
    raise ConfigError("data.pair_documents", "'sides' is for experiment clm with "
                      "data.packing=documents on data.path's pairs; set it to 'joined'")
