"""The candidates of TextFooler and PWWS, and TextFooler's part-of-speech check, offline.

TextAttack's recipes for the two attacks download their parts: ``WordSwapEmbedding`` loads
counter-fitted PARAGRAM vectors, ``WordSwapWordNet`` calls ``nltk.download("omw-1.4")``, and
``PartOfSpeech`` loads NLTK's, flair's or stanza's tagger. These are the same algorithms over what
this project has on disk:

- ``CounterFittedNeighbourSwap`` (TextFooler, Jin et al. 2020): a word's candidates are its K
  nearest neighbours in the project's counter-fitted word vectors (``attack_workers.lexicon.vectors``)
  with cosine >= ``min_cos``, nearest first. Same ranking as ``WordSwapEmbedding`` (the vectors are
  unit length, so Euclidean and cosine order agree) without its per-word copy of the whole matrix.
- ``WordNetSynonymSwap`` (PWWS, Ren et al. 2019): every single-word lemma of every WordNet synset
  of the word, as ``WordSwapWordNet`` proposes them, from the project's WordNet 3.0 files.
- ``PartOfSpeechConsistency`` (TextFooler's ``PartOfSpeech(allow_verb_noun_swap=True)``): the new
  word's word class in its sentence is the original's (nouns and verbs may swap), tagged by the
  project's offline tagger (``attack_workers.lexicon.tagger``).

Both transformations apply the rules every attack shares (``ProjectWordSwap``): a protocol's
candidate rewrite (the strict protocol's re-inflection), no number, negation or un-/in- form
(``transformation._allowed_swap``), only real English words (``relations.is_english_word``), one
TextAttack word per candidate, and no swap that changes only the case. Candidates are tagged with
their rank (``search.tag_rank``), nearest or WordNet-first, although the two recipes' search
(TextAttack's ``GreedyWordSwapWIR``) ranks them by the victim's score.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from attack_workers.attack.offline import import_textattack
from attack_workers.attack.search import tag_rank
from attack_workers.attack.transformation import _allowed_swap
from attack_workers.lexicon.tagger import coarse

import_textattack()
from textattack.constraints import Constraint  # noqa: E402
from textattack.shared import AttackedText, utils  # noqa: E402
from textattack.transformations import WordSwap  # noqa: E402

Rewrite = Callable[[AttackedText, int, str], "str | None"]


def recover_case(word: str, like: str) -> str:
    """``word`` in the case of ``like`` (lower, UPPER or Capitalised), as TextAttack's ``recover_word_case``."""
    if like.islower():
        return word.lower()
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper() and like[1:].islower():
        return word.capitalize()
    return word


class ProjectWordSwap(WordSwap):
    """A word swap whose candidates pass the rules every attack shares (module docstring)."""

    def __init__(self, is_word: Callable[[str], bool] | None = None, rewrite: Rewrite | None = None) -> None:
        super().__init__()
        self.is_word = is_word or (lambda word: True)
        self.rewrite = rewrite or (lambda text, index, word: word)

    def candidates(self, word: str) -> list[str]:
        """Replacement words for ``word``, best first (before any rule)."""
        raise NotImplementedError

    def _get_replacement_words(self, word: str) -> list[str]:
        return self.candidates(word)

    def _get_transformations(self, current_text: AttackedText, indices_to_modify: Any) -> list[AttackedText]:
        transformed = []
        for index in indices_to_modify:
            original = current_text.words[index]
            proposed = (self.rewrite(current_text, index, recover_case(w, original)) for w in self.candidates(original))
            words = list(dict.fromkeys(
                w for w in proposed
                if w is not None and w.lower() != original.lower() and utils.words_from_text(w) == [w]
                and _allowed_swap(w, original) and self.is_word(w)))
            transformed += [tag_rank(current_text.replace_word_at_index(index, w), rank) for rank, w in enumerate(words)]
        return transformed


class CounterFittedNeighbourSwap(ProjectWordSwap):
    """TextFooler's candidates: the ``max_candidates`` nearest counter-fitted neighbours with cosine >= ``min_cos``."""

    def __init__(self, lexicon: Any, max_candidates: int = 50, min_cos: float = 0.5, **rules: Any) -> None:
        super().__init__(**rules)
        if max_candidates < 1:
            raise ValueError(f"max_candidates={max_candidates}: must be >= 1 (TextFooler uses 50)")
        self.lexicon = lexicon
        self.max_candidates = max_candidates
        self.min_cos = min_cos
        self._neighbours: dict[str, list[str]] = {}

    def candidates(self, word: str) -> list[str]:
        lower = word.lower()
        if lower not in self._neighbours:
            self._neighbours[lower] = self._nearest(lower)
        return self._neighbours[lower]

    def _nearest(self, word: str) -> list[str]:
        row = self.lexicon.index.get(word)
        if row is None:  # no vector: no neighbours (as WordSwapEmbedding)
            return []
        vectors = np.asarray(self.lexicon.vectors)
        cosines = vectors @ vectors[row]
        cosines[row] = -np.inf  # never the word itself
        k = min(self.max_candidates, len(cosines) - 1)
        top = np.argpartition(-cosines, k - 1)[:k]
        top = top[np.argsort(-cosines[top], kind="stable")]
        return [self.lexicon.words[i] for i in top if cosines[i] >= self.min_cos]

    def extra_repr_keys(self) -> list[str]:
        return ["max_candidates", "min_cos"]


class WordNetSynonymSwap(ProjectWordSwap):
    """PWWS's candidates: the single-word lemmas of every WordNet synset of the word (any part of speech)."""

    def __init__(self, **rules: Any) -> None:
        super().__init__(**rules)
        self._synonyms: dict[str, list[str]] = {}

    def candidates(self, word: str) -> list[str]:
        if word not in self._synonyms:
            from attack_workers.lexicon.resources import load_wordnet

            found = []
            for synset in load_wordnet().synsets(word):
                for name in synset.lemma_names():
                    if name != word and "_" not in name:
                        found.append(name)
            self._synonyms[word] = list(dict.fromkeys(found))
        return self._synonyms[word]


class PartOfSpeechConsistency(Constraint):
    """TextFooler's part-of-speech check with the offline tagger: same word class in context.

    The word class is ``tagger.coarse`` of the Penn tag (N, V, J, R; other tags must match
    exactly); with ``allow_verb_noun_swap`` a noun may become a verb and back, as in TextAttack's
    TextFooler recipe. Inflection may change (the strict protocol forbids that separately).
    """

    def __init__(self, tagger: Any, allow_verb_noun_swap: bool = True) -> None:
        super().__init__(compare_against_original=True)
        self.tagger = tagger
        self.allow_verb_noun_swap = allow_verb_noun_swap

    def _check_constraint(self, transformed_text: Any, reference_text: Any) -> bool:
        for index in transformed_text.attack_attrs.get("newly_modified_indices", set()):
            old = coarse(self.tagger.tag_at(reference_text.words, index))
            new = coarse(self.tagger.tag_at(transformed_text.words, index))
            if old != new and not (self.allow_verb_noun_swap and {old, new} == {"N", "V"}):
                return False
        return True

    def check_compatibility(self, transformation: Any) -> bool:
        from textattack.shared.validators import transformation_consists_of_word_swaps

        return transformation_consists_of_word_swaps(transformation)

    def extra_repr_keys(self) -> list[str]:
        return ["allow_verb_noun_swap", *super().extra_repr_keys()]
