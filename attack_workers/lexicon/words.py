"""What counts as one word: the single definition the lexicon, the audit and the attack's candidates share.

Why one: the word lexicon must hold a vector for every candidate a masked-LM token can be (else
the pair passes the word filter unchecked, the audit's "hole"), the audit calls a whole-word MLM
token a real word by construction, and the attack keeps a candidate only when it is exactly one
word. Three definitions drifted apart: the lexicon took ASCII words only (so "stanisław" or "ə"
could be proposed with no vector), the audit took ``str.isalpha`` tokens, and the candidates
took anything TextAttack splits as one word, digits and "½", "×" or "`" included.

A whole word is letters (``str.isalpha``, any script), with apostrophes or hyphens only between
letters ("don't", "well-made"): no digits, no sub-word marker ("##ing"), no punctuation.
"""

from __future__ import annotations

import re
from typing import Any

_SEPARATORS = re.compile(r"['-]")
_SPAN = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")  # on text where every non-letter but ' and - is a space


def is_whole_word(text: str) -> bool:
    """True when ``text`` is one word: letters, with ``'`` or ``-`` only between letters."""
    return all(part.isalpha() for part in _SEPARATORS.split(text))  # "".isalpha() is False


def whole_word_tokens(tokenizer: Any) -> frozenset[str]:
    """The tokens of an MLM vocabulary that are one whole word each (as spelled in the vocabulary).

    These are the single-token candidates the attack can propose (``BertAttackWordSwap``), and
    real words by construction for the audit.
    """
    specials = set(tokenizer.all_special_tokens)
    return frozenset(t for t in tokenizer.get_vocab() if t not in specials and is_whole_word(t))


def text_words(text: str) -> set[str]:
    """The lower-case whole words of a text (a corpus's words for the lexicon's vocabulary)."""
    letters = "".join(c if c.isalpha() or c in "'-" else " " for c in text.lower())  # "½" is \w, not a letter
    return set(_SPAN.findall(letters))
