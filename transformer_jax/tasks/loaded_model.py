"""A loaded model (`transformer_jax.load`): its parts, and thin methods over text.

  generate(prompts)                 clm, sft: continuations (clm: the ragged KV-cached batch
                                    of --prompts_file; sft: completions of its template)
  score(texts, continuations=None)  clm, sft: log-probabilities of texts, or of each
                                    continuation given its context; seq2seq: of each target
                                    (continuations) given its source (texts)
  hidden_states(texts, layers=False) clm, sft, mlm, classify, seq2seq (the encoder's)
  translate(sentences)              seq2seq
  classify(texts)                   classify: (label, {label: probability}) per text
The parts are there for anything else: `model`, `params`, `tokenizer`, `config`, `task`.
Methods call the same jitted decoding, scoring and model code as the modes, batch and pad
ragged inputs, and keep their compiled functions: a second call of the same shapes
compiles nothing. Decoding settings (strategy, temperature, ...) default to the config's
decode.* and are validated as launch.py validates them.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from transformer_jax import configuration
from transformer_jax.config_sections import DecodeConfig, ExperimentConfig
from transformer_jax.decoding.continuer import Continuer
from transformer_jax.data.tokenizers import special_tokens
from transformer_jax.errors import UserError
from transformer_jax.evaluation import log_likelihood
from transformer_jax.run.task import Task
from transformer_jax.tasks import classify, clm, hidden, seq2seq, sft


class LoadedModel:
  """See the module docstring; made by `transformer_jax.load`."""

  def __init__(self, task: Task, params: Any, step: int, name: str = ""):
    self.task, self.params, self.step, self.name = task, params, step, name
    self._decoders: dict[tuple, Any] = {}  # (kind, DecodeConfig) -> a decoder object.
    self._compiled: dict[tuple, Any] = {}

  def __repr__(self) -> str:
    return (f"LoadedModel({self.name!r}: experiment {self.experiment}, step {self.step}, "
            f"{self.config.model.num_layers} layers x {self.config.model.model_dim})")

  @property
  def config(self) -> ExperimentConfig:
    return self.task.cfg

  @property
  def model(self):
    return self.task.model

  @property
  def tokenizer(self):
    return self.task.tokenizer

  @property
  def labels(self) -> tuple[str, ...]:
    return self.task.labels

  @property
  def experiment(self) -> str:
    return self.config.experiment

  def _require(self, method: str, experiments: tuple[str, ...]) -> None:
    if self.experiment not in experiments:
      raise UserError(f"{method} is for experiment{'s' if len(experiments) > 1 else ''} "
                      f"{', '.join(experiments)}; this is a {self.experiment} model")

  def _decode_config(self, settings: dict[str, Any]) -> DecodeConfig:
    """decode.* with the given settings (None: the config's), validated."""
    given = {name: value for name, value in settings.items() if value is not None}
    return configuration.replace_decode(self.config, given).decode

  def _decoder(self, kind: str, decode: DecodeConfig, make):
    key = (kind, decode)
    if key not in self._decoders:
      self._decoders[key] = make(self.task, decode)
    return self._decoders[key]

  def generate(self, prompts: Sequence[str], *, max_new_tokens: Optional[int] = None,
               strategy: Optional[str] = None, temperature: Optional[float] = None,
               top_k: Optional[int] = None, top_p: Optional[float] = None,
               beam_size: Optional[int] = None, length_penalty: Optional[float] = None,
               seed: Optional[int] = None) -> list[str]:
    """Each prompt's continuation (clm) or completion (sft), as `--mode=sample` makes them
    (clm: its --prompts_file path: one KV-cached batch within model.max_length, EOS ends a
    row; beam: the best hypothesis)."""
    self._require("generate", ("clm", "sft"))
    decode = self._decode_config(dict(
        max_new_tokens=max_new_tokens, strategy=strategy, temperature=temperature,
        top_k=top_k, top_p=top_p, beam_size=beam_size, length_penalty=length_penalty,
        seed=seed))
    prompts = list(prompts)
    if not prompts:
      return []
    if self.experiment == "sft":
      return self._decoder("complete", decode, sft.make_completer).complete(self.params,
                                                                            prompts)
    continuer = self.continuer(decode)
    if decode.strategy == "beam":
      return [hypotheses[0][0] if hypotheses else ""
              for hypotheses in continuer.n_best(self.params, prompts)]
    return continuer.continue_batch(self.params, prompts)

  def continuer(self, decode: Optional[DecodeConfig] = None, **settings) -> Continuer:
    """The decoder-only model's `Continuer` (decoding/continuer.py) for decode.* with the
    given settings, kept for the next call with the same ones (clm, sft)."""
    self._require("continuer", ("clm", "sft"))
    decode = decode or self._decode_config(settings)
    return self._decoder("continue", decode, clm.continuer)

  @property
  def eos_id(self) -> Optional[int]:
    """The end-of-text token (<eos>, GPT-2's <|endoftext|>), or None without one."""
    if special_tokens.EOS in getattr(self.tokenizer, "special_tokens", ()):
      return self.tokenizer.token_id(special_tokens.EOS)
    return None

  def requests(self, texts: Sequence[str],
               continuations: Optional[Sequence[str]] = None) -> list[log_likelihood.Request]:
    """The token requests `score` runs (clm, sft): see evaluation/log_likelihood.py. sft
    scores a completion after its prompt in the template `prompt <eos> completion <eos>`."""
    encode, eos = self.tokenizer.encode, self.eos_id
    if continuations is None:
      return [log_likelihood.document_request(encode(text), eos) for text in texts]
    if len(continuations) != len(texts):
      raise UserError(f"score: {len(texts)} contexts but {len(continuations)} continuations")
    if self.experiment == "sft":
      return [log_likelihood.Request(tuple(int(t) for t in encode(prompt)) + (eos,),
                                     tuple(int(t) for t in encode(completion)) + (eos,))
              for prompt, completion in zip(texts, continuations)]
    return [log_likelihood.encode_pair(encode, context, continuation, eos)
            for context, continuation in zip(texts, continuations)]

  def score(self, texts: Sequence[str],
            continuations: Optional[Sequence[str]] = None) -> list[log_likelihood.Result]:
    """Per text (or per continuation given its context): the summed log-probability
    (`log_prob`), `token_log_probs`, the scored `tokens`, and `is_greedy`. A whole text is
    scored from its first token (after EOS where the tokenizer has one; a text longer than
    the context in disjoint windows, as lm-evaluation-harness's rolling log-likelihood).
    seq2seq: log P(target + <eos> | source) of each continuation given each text."""
    self._require("score", ("clm", "sft", "seq2seq"))
    texts = list(texts)
    if self.experiment == "seq2seq":
      if continuations is None or len(continuations) != len(texts):
        raise UserError("score of a seq2seq model: score(sources, continuations=targets), "
                        "one target per source")
      scorer = self._compiled.setdefault(("seq2seq",), seq2seq.target_scorer(self.task))
      return scorer(self.params, texts, list(continuations))
    if continuations is not None:
      return self.score_requests(self.requests(texts, continuations))
    results = []
    for text in texts:  # A long text: disjoint windows, their results joined.
      windows = log_likelihood.rolling_windows(self.tokenizer.encode(text), self.eos_id,
                                               self.config.model.max_length)
      parts = self.score_requests(windows)
      results.append(log_likelihood.Result(
          log_prob=float(sum(part.log_prob for part in parts)),
          is_greedy=all(part.is_greedy for part in parts),
          token_log_probs=np.concatenate([p.token_log_probs for p in parts] or
                                         [np.zeros(0, np.float32)]),
          tokens=np.concatenate([p.tokens for p in parts] or [np.zeros(0, np.int32)])))
    return results

  def score_requests(self, requests: Sequence[log_likelihood.Request]
                     ) -> list[log_likelihood.Result]:
    """Token-level requests (context, continuation ids) scored in padded length buckets by
    one compiled function per bucket, kept (clm, sft)."""
    self._require("score_requests", ("clm", "sft"))
    if ("decoder",) not in self._compiled:
      self._compiled[("decoder",)] = self._decoder_scorer()
    return self._compiled[("decoder",)].score(self.params, requests)

  def _decoder_scorer(self) -> log_likelihood.Scorer:
    model = self.task.model
    pad = (self.tokenizer.token_id(special_tokens.PAD)
           if special_tokens.PAD in getattr(self.tokenizer, "special_tokens", ()) else 0)
    return log_likelihood.Scorer(
        lambda params, tokens: model.apply({"params": params}, tokens,
                                           deterministic=True).logits,
        self.config.model.max_length, self.config.eval.batch_size, pad,
        context=self.task.decoding_mesh)

  def hidden_states(self, texts: Sequence[str], *, layers: bool = False) -> hidden.HiddenStates:
    """[B, T, D] hidden states of the texts' tokens (mlm and encoder classifiers: of
    <cls> text <sep>; seq2seq: the encoder's, of text <eos>), and with layers=True each
    block's output [L, B, T, D]. Texts longer than model.max_length are cut."""
    fn = self._compiled.setdefault(("hidden", layers), hidden.hidden_states_fn(self.task, layers))
    return fn(self.params, list(texts))

  def translate(self, sentences: Sequence[str], **decode) -> list[str]:
    """One translation per sentence (decode settings as in `generate`)."""
    self._require("translate", ("seq2seq",))
    translator = self._decoder("translate", self._decode_config(decode),
                               seq2seq.make_translator)
    return [" ".join(t.splitlines()) for t in translator.translate(self.params, list(sentences))]

  def classify(self, texts: Sequence[str]) -> list[tuple[str, dict[str, float]]]:
    """(the most probable label, {label: probability}) per text."""
    self._require("classify", ("classify",))
    probabilities = self._compiled.setdefault(("classify",), classify.probability_fn(self.task))
    out = []
    for row in probabilities(self.params, list(texts)):
      out.append((self.labels[int(np.argmax(row))],
                  {label: float(p) for label, p in zip(self.labels, row)}))
    return out

