"""The validity audit: is each substitution an attack kept really meaning-preserving?

Why: an "adversarial example" that swaps "good" for "bad" has changed the label, not fooled the
model, and an attack that accepts such swaps scores every model near zero. No reference
implementation (TextAttack, TextDefender, the authors' scripts) reports how often this happens;
this project stores it for every attacked example, under every protocol, so every Att Acc comes
with the share of its successes that are suspect.

Per example, over its substitutions (original word -> new word, at each changed word position):

- ``audit_antonym``: a new word is a WordNet antonym of the word it replaced (expanded to synsets
  and satellites, ``attack_workers.lexicon.relations.antonyms_of``);
- ``audit_polarity_flip``: the two words have opposite, clear sentiment in VADER's lexicon
  (|valence| >= 1 on its -4..+4 scale). VADER never enters the word vectors, so this flag is an
  independent check of the filter;
- ``audit_nonword``: a new word is neither an English word (WordNet, its inflections) nor a
  whole-word token of the MLM (a word by construction);
- ``audit_min_cos``: the lowest word-vector cosine among the substitutions that have vectors;
- ``audit_unknown_pairs``: substitutions where either word has no vector: the filter's hole,
  which passes them as the authors' script does;
- ``audit_hole``: at least one such substitution (rare words such as "pogy" come in this way);
- ``audit_pos_change``: a new word has another part of speech in its sentence than the word it
  replaced had in the original ("poetry" NN -> "poetic" JJ), by the tagger in context
  (``attack_workers.lexicon.tagger``);
- ``audit_inflection_change``: same part of speech, other inflection ("entertaining" VBG ->
  "entertained" VBN, "lot" NN -> "lots" NNS): broken English in most sentences;
- ``audit_stopword_swap``: a stop word (either list, any case) is replaced or comes in ("A" -> "as");
- ``audit_flagged``: any of antonym, polarity flip, non-word, hole, part-of-speech change,
  inflection change or stop-word swap. Summaries report the meaning flags (antonym, polarity) and
  the grammar flags separately as well (``attack_workers.results.metrics.audit_summary``: the
  shares are computed from the stored rows when they are read).

Reading the successes of the word-filtered ``vda-paper`` protocol showed that the first three
flags alone passed broken English ("to watched an actors"); the tag-based flags are what a reader
objects to there.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

AUDIT_COLUMNS = ("substitutions", "audit_antonym", "audit_polarity_flip", "audit_nonword", "audit_min_cos",
                 "audit_unknown_pairs", "audit_hole", "audit_pos_change", "audit_inflection_change",
                 "audit_stopword_swap", "audit_flagged")
LABEL_RISK_COLUMNS = ("audit_antonym", "audit_polarity_flip", "audit_nonword")
"""Flags under which the original label may no longer hold (ADA drops such successes)."""
CLEAR_VALENCE = 1.0  # VADER: mean human rating on -4..+4; |v| >= 1 is a clearly rated word


def is_polarity_flip(valence: dict[str, float], old: str, new: str) -> bool:
    """Whether the two words have opposite, clear sentiment in ``valence`` (VADER's lexicon)."""
    a, b = valence.get(old.lower(), 0.0), valence.get(new.lower(), 0.0)
    return abs(a) >= CLEAR_VALENCE and abs(b) >= CLEAR_VALENCE and (a > 0) != (b > 0)


def substitutions(original_words: list[str], perturbed_words: list[str], changed: set[int]) -> list[tuple[str, str]]:
    """(original, new) word pairs at the ``changed`` indices (a word swap keeps the word count)."""
    return [(original_words[i], perturbed_words[i]) for i in sorted(changed)]


class Auditor:
    """Applies the audit with the resources a worker loads once."""

    def __init__(self, cosine: Callable[[str, str], float | None], is_known_word: Callable[[str], bool],
                 tagger: Any) -> None:
        from attack_workers.lexicon.relations import antonyms_of
        from attack_workers.lexicon.resources import load_valence
        from attack_workers.lexicon.stopwords import ALL_STOPWORDS

        self._cosine = cosine
        self._is_known_word = is_known_word
        self._tagger = tagger
        self._antonyms_of = antonyms_of
        self._valence = load_valence()
        self._stopwords = ALL_STOPWORDS

    def _tag_changes(self, original_words: list[str], perturbed_words: list[str],
                     changed: list[int]) -> tuple[bool, bool]:
        """(part of speech changed, inflection changed) at some changed position, tags in context."""
        from attack_workers.lexicon.tagger import coarse

        if not changed:
            return False, False
        before, after = self._tagger.tags(original_words), self._tagger.tags(perturbed_words)
        pairs = [(before[i], after[i]) for i in changed]
        pos = any(coarse(a) != coarse(b) for a, b in pairs)
        inflection = any(coarse(a) == coarse(b) and a != b for a, b in pairs)
        return pos, inflection

    def audit(self, original_words: list[str], perturbed_words: list[str], changed: set[int]) -> dict[str, Any]:
        """The ``AUDIT_COLUMNS`` of one example's word swaps (all False/NaN/0 when there are none)."""
        indices = sorted(changed)
        pairs = substitutions(original_words, perturbed_words, changed)
        cosines = [self._cosine(old, new) for old, new in pairs]
        known = [c for c in cosines if c is not None]
        pos_change, inflection_change = self._tag_changes(original_words, perturbed_words, indices)
        flags = {
            "audit_antonym": any(new.lower() in self._antonyms_of(old.lower()) for old, new in pairs),
            "audit_polarity_flip": any(is_polarity_flip(self._valence, old, new) for old, new in pairs),
            "audit_nonword": any(not self._is_known_word(new) for _, new in pairs),
            "audit_hole": len(known) < len(cosines),
            "audit_pos_change": pos_change,
            "audit_inflection_change": inflection_change,
            "audit_stopword_swap": any(w.lower() in self._stopwords for pair in pairs for w in pair),
        }
        values = {**flags, "substitutions": json.dumps(pairs), "audit_min_cos": min(known) if known else math.nan,
                  "audit_unknown_pairs": len(cosines) - len(known), "audit_flagged": any(flags.values())}
        return {column: values[column] for column in AUDIT_COLUMNS}  # the store's column order
