"""Special tokens spelled another way: GPT-2's <|endoftext|> as <eos>, BERT's [CLS] as <cls>.

The objectives ask a tokenizer for the project's names (`special_tokens.EOS`, ...). A
tokenizer from elsewhere spells them its own way; `with_names` wraps it so that the
project's names find them. A role's spelling is, in order: data.special_token_names
(ROLE=TOKEN, e.g. eos=</s>); the project's own name when the tokenizer has it as a
special token; the first of `CONVENTIONS` it has (Hugging Face's GPT-2 and BERT
spellings). A tokenizer that needs none of this is returned as it is, so a project
tokenizer behaves exactly as before. The wrapper changes no id and no file: kind,
fingerprint and saved file are the wrapped tokenizer's.
"""

from __future__ import annotations

from typing import Mapping

from transformer_jax import config_choices
from transformer_jax.data.tokenizers import special_tokens
from transformer_jax.errors import ConfigError

ROLE_TOKENS = {"pad": special_tokens.PAD, "bos": special_tokens.BOS, "eos": special_tokens.EOS,
               "unk": special_tokens.UNK, "mask": special_tokens.MASK,
               "cls": special_tokens.CLS, "sep": special_tokens.SEP}
GPT2_END = "<|endoftext|>"
CONVENTIONS = {"pad": ("[PAD]", GPT2_END), "bos": (GPT2_END,), "eos": (GPT2_END,),
               "unk": ("[UNK]",), "mask": ("[MASK]",), "cls": ("[CLS]",), "sep": ("[SEP]",)}


class NamedSpecialTokens:
  """A tokenizer whose special tokens the project's names also reach (see the module doc).

  names: {project name (e.g. '<eos>'): the tokenizer's own token (e.g. '<|endoftext|>')}.
  """

  def __init__(self, tokenizer, names: Mapping[str, str]):
    self.tokenizer = tokenizer
    self.names = dict(names)

  def __getattr__(self, name):
    return getattr(self.tokenizer, name)

  @property
  def special_tokens(self) -> tuple[str, ...]:
    """The wrapped tokenizer's special tokens, and the project's names of those renamed."""
    renamed = set(self.names.values())
    return tuple(t for t in self.tokenizer.special_tokens if t not in renamed) + tuple(self.names)

  def token_id(self, token: str) -> int:
    return self.tokenizer.token_id(self.names.get(token, token))


def unwrap(tokenizer):
  """The tokenizer itself, without a `NamedSpecialTokens` wrapper."""
  return tokenizer.tokenizer if isinstance(tokenizer, NamedSpecialTokens) else tokenizer


def with_names(tokenizer, configured: str = ""):
  """`tokenizer`, wrapped when some role is spelled otherwise. configured:
  data.special_token_names. A configured token the vocabulary lacks is a ConfigError."""
  tokenizer = unwrap(tokenizer)
  own = set(tokenizer.special_tokens)
  explicit = config_choices.special_token_names(configured)
  names = {}
  for role, project_name in ROLE_TOKENS.items():
    if role in explicit:
      spelled = explicit[role]
      try:
        tokenizer.token_id(spelled)
      except Exception:  # pylint: disable=broad-except
        raise ConfigError("data.special_token_names",
                          f"{role}={spelled}: {spelled!r} is not in the tokenizer's "
                          "vocabulary") from None
    elif project_name in own:
      continue
    else:
      spelled = next((name for name in CONVENTIONS[role] if name in own), None)
    if spelled is not None and spelled != project_name:
      names[project_name] = spelled
  return NamedSpecialTokens(tokenizer, names) if names else tokenizer
