"""WikiText's layout: its lines, words, paragraphs and sentences.

WikiText-2 (v1, tokenized; Merity et al. 2016) is Wikipedia text, Moses-tokenized
(`@-@`, `@,@` and `@.@` inside numbers and compounds, rare words already `<unk>`).
Every line starts and ends with a space and ends with "\\n", which language models
read as one `<eos>`; blank lines (" ") separate paragraphs and headings
(" = Title = ", " = = Section = = "), and each paragraph is one line. All of it,
blank lines and headings included, is the text a model is scored on.

Word-level perplexity, the figure published for this split, is
exp(total NLL of a split / its words), counting as words the whitespace-separated
tokens of every line plus one `<eos>` per line: 2,088,628 (train), 217,646
(validation) and 245,569 (test) words. A subword model's total NLL over the same
text gives the same kind of figure, whatever its tokens.

For BERT's sentence pairs, a passage is a paragraph (headings and blank lines are
left out) and its sentences are cut after every " . " (a Moses-tokenized full stop
followed by the next word): the sentences of a paragraph, concatenated, give the
paragraph's line back, each starting with its space (" It was ...").
"""

from __future__ import annotations

import re

_HEADING = re.compile(r" (= )+.*?( =)+ ")
_SENTENCE_END = re.compile(r"(?<= \.)(?= \S)")  # After " ." when another word follows.


def lines(text: str) -> list[str]:
  """The text's lines with their "\\n" (split on "\\n" only); a last line without one is
  kept as it is."""
  parts = text.split("\n")
  result = [part + "\n" for part in parts[:-1]]
  if parts[-1]:
    result.append(parts[-1])
  return result


def word_count(text: str) -> int:
  """Words plus one <eos> per line: the denominator of word-level perplexity."""
  return sum(len(line.split()) + line.endswith("\n") for line in lines(text))


def is_heading(line: str) -> bool:
  return _HEADING.fullmatch(line.removesuffix("\n")) is not None


def paragraphs(text: str) -> list[str]:
  """The paragraph lines (without "\\n"): not blank, not a heading."""
  return [line.removesuffix("\n") for line in lines(text)
          if line.strip() and not is_heading(line)]


def sentences(paragraph: str) -> list[str]:
  """A paragraph cut after each " ." that another word follows; "".join() gives it back."""
  return _SENTENCE_END.split(paragraph)
