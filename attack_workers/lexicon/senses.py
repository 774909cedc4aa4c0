"""Which WordNet senses fit a word in its sentence: gloss matching with the sentence encoder.

Why: WordNet lists a pair as synonyms when they share *any* sense, and reading ``strict``'s
successes showed that most of its remaining rejections were a synonym of the wrong sense: "An odd
drama" -> "An uneven drama" (odd.a.01, "not divisible by two"), "De Niro cries" -> "screams"
(shout.v.02, not cry.v.02 "shed tears"), "the execution of these twists" -> "the performance"
(performance.n.03 is execution's seventh sense here, behind capital punishment). A swap keeps the
meaning when the substitute shares a sense the original has *here*.

The senses are ranked as in embedding-based Lesk: the words around the target (``CONTEXT_WORDS``
either side) and each sense's gloss (the word, its lemma names, definition and examples) are
embedded with the packaged MiniLM, and the senses whose gloss is closest to the context fit best.
The first sense alone is too narrow for MiniLM's glosses: on the reading records
(docs/results/calibration.md#strict-v3-idioms-polarity-and-senses-in-context) it refused 10 of 24
accepted texts; ``SENSE_CANDIDATES`` = 2 refused 4 of them and 20 of 30 rejected ones. Gloss
embeddings are cached per gloss, a context's embedding per context.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

from attack_workers.lexicon.relations import single_word
from attack_workers.lexicon.resources import load_wordnet

CONTEXT_WORDS = 2  # words either side of the target (2, 3 and 5 separate alike on the reading records)
SENSE_CANDIDATES = 2  # a swap keeps the meaning when a shared sense is among the 2 that fit the context best
WORDNET_POS = {"N": ("n",), "V": ("v",), "J": ("a", "s"), "R": ("r",)}  # word class -> WordNet parts of speech


@lru_cache(maxsize=None)
def lemma_names_of(synset: Any) -> frozenset[str]:
    """Lower-case single-word lemma names of ``synset`` and, for an adjective, its similar-to satellites."""
    related = (synset, *synset.similar_tos())
    return frozenset(w for s in related for w in map(single_word, s.lemma_names()) if w)


def senses_of(lemmas: set[str] | frozenset[str], word_class: str) -> list[Any]:
    """Every WordNet sense of any of ``lemmas`` in ``word_class`` (N, V, J, R), most frequent first per lemma."""
    wn = load_wordnet()
    found: dict[Any, None] = {}
    for lemma in sorted(lemmas):
        for pos in WORDNET_POS.get(word_class, ()):
            found.update(dict.fromkeys(wn.synsets(lemma, pos)))
    return list(found)


def gloss(synset: Any, word: str) -> str:
    """The text a sense is recognised by: the word, a few lemma names, the definition, two examples."""
    names = ", ".join(name.replace("_", " ") for name in synset.lemma_names()[:4])
    return f"{word} ({names}): {synset.definition()}. " + " ".join(synset.examples()[:2])


class SenseChooser:
    """Ranks a word's senses in context; one per attack (it shares the worker's sentence encoder)."""

    def __init__(self, sentence_model: Any, candidates: int = SENSE_CANDIDATES,
                 context_words: int = CONTEXT_WORDS) -> None:
        if candidates < 1 or context_words < 0:
            raise ValueError(f"SenseChooser: candidates={candidates} must be >= 1 and context_words="
                             f"{context_words} >= 0")
        self.sentence_model = sentence_model
        self.candidates = candidates
        self.context_words = context_words
        self._glosses: dict[str, torch.Tensor] = {}  # bounded by WordNet's size
        self._contexts: dict[str, torch.Tensor] = {}

    def _encode(self, texts: list[str]) -> torch.Tensor:
        return self.sentence_model.encode(texts, convert_to_tensor=True, normalize_embeddings=True,
                                          show_progress_bar=False).cpu()

    def _embeddings(self, cache: dict[str, torch.Tensor], texts: list[str]) -> torch.Tensor:
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            cache.update(zip(missing, self._encode(missing)))
        return torch.stack([cache[t] for t in texts])

    def context(self, words: Any, index: int) -> str:
        """The words around ``words[index]`` that its sense is judged by."""
        k = self.context_words
        return " ".join(words[max(0, index - k): index + k + 1])

    def senses_in_context(self, words: Any, index: int, senses: list[Any]) -> list[Any]:
        """The ``candidates`` of ``senses`` whose glosses are closest to the context of ``words[index]``, best first."""
        if len(senses) <= self.candidates:
            return list(senses)
        word = words[index].lower()
        glosses = self._embeddings(self._glosses, [gloss(s, word) for s in senses])
        scores = glosses @ self._embeddings(self._contexts, [self.context(words, index)])[0]
        order = torch.argsort(scores, descending=True, stable=True)[: self.candidates]
        return [senses[i] for i in order.tolist()]

    def keeps_sense(self, words: Any, index: int, old: set[str], new: set[str], word_class: str) -> bool:
        """Whether lemmas ``new`` keep the sense ``words[index]`` (lemmas ``old``) has in its sentence.

        True when WordNet relates no sense of the two (the rule has nothing to say: the cosine rule
        decides), or when a sense they share is among those that fit the context best.
        """
        senses = senses_of(old, word_class)
        shared = [s for s in senses if new & lemma_names_of(s)]
        if not shared:
            return True
        fitting = self.senses_in_context(words, index, senses)
        return any(s in fitting for s in shared)
