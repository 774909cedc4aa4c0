"""The validity audit: is each substitution an attack kept really meaning-preserving?

Why: an "adversarial example" that swaps "good" for "bad" has changed the label, not fooled the
model, and an attack that accepts such swaps scores every model near zero. No reference
implementation (TextAttack, TextDefender, the authors' scripts) reports how often this happens;
this project stores it for every attacked example, under every protocol, so every Att Acc comes
with the share of its successes that are suspect.

Per example, over its substitutions (original word -> new word, at each changed word position):

- ``audit_antonym``: a new word is a WordNet antonym of the word it replaced (expanded to synsets
  and satellites, ``attack_workers.relations.antonyms_of``);
- ``audit_polarity_flip``: the two words have opposite, clear sentiment in VADER's lexicon
  (|valence| >= 1 on its -4..+4 scale). VADER never enters the word vectors, so this flag is an
  independent check of the filter;
- ``audit_nonword``: a new word is neither an English word (WordNet, its inflections) nor a
  whole-word token of the MLM (a word by construction);
- ``audit_min_cos``: the lowest word-vector cosine among the substitutions that have vectors;
- ``audit_unknown_pairs``: substitutions where either word has no vector: the filter's hole,
  which passes them as the authors' script does;
- ``audit_flagged``: antonym, polarity flip or non-word.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

AUDIT_COLUMNS = ("substitutions", "audit_antonym", "audit_polarity_flip", "audit_nonword", "audit_min_cos",
                 "audit_unknown_pairs", "audit_flagged")
CLEAR_VALENCE = 1.0  # VADER: mean human rating on -4..+4; |v| >= 1 is a clearly rated word


def substitutions(original_words: list[str], perturbed_words: list[str], changed: set[int]) -> list[tuple[str, str]]:
    """(original, new) word pairs at the ``changed`` indices (a word swap keeps the word count)."""
    return [(original_words[i], perturbed_words[i]) for i in sorted(changed)]


class Auditor:
    """Applies the audit with the resources a worker loads once."""

    def __init__(self, cosine: Callable[[str, str], float | None], is_known_word: Callable[[str], bool]) -> None:
        from attack_workers.relations import antonyms_of
        from attack_workers.resources import load_valence

        self._cosine = cosine
        self._is_known_word = is_known_word
        self._antonyms_of = antonyms_of
        self._valence = load_valence()

    def polarity_flip(self, old: str, new: str) -> bool:
        a, b = self._valence.get(old.lower(), 0.0), self._valence.get(new.lower(), 0.0)
        return abs(a) >= CLEAR_VALENCE and abs(b) >= CLEAR_VALENCE and (a > 0) != (b > 0)

    def audit(self, pairs: list[tuple[str, str]]) -> dict[str, Any]:
        """The ``AUDIT_COLUMNS`` of one example's substitutions (all False/NaN/0 when there are none)."""
        cosines = [self._cosine(old, new) for old, new in pairs]
        known = [c for c in cosines if c is not None]
        antonym = any(new.lower() in self._antonyms_of(old.lower()) for old, new in pairs)
        polarity = any(self.polarity_flip(old, new) for old, new in pairs)
        nonword = any(not self._is_known_word(new) for _, new in pairs)
        return {
            "substitutions": json.dumps(pairs),
            "audit_antonym": antonym,
            "audit_polarity_flip": polarity,
            "audit_nonword": nonword,
            "audit_min_cos": min(known) if known else math.nan,
            "audit_unknown_pairs": len(cosines) - len(known),
            "audit_flagged": antonym or polarity or nonword,
        }


def audit_summary(rows: Any) -> dict[str, float]:
    """Shares over one checkpoint's *succeeded* attacks: what a reader of its Att Acc must know.

    ``flagged_share`` is the headline (antonym, polarity flip or non-word); ``hole_share`` is the
    share of all substitutions in successes that had no vector and so passed the word filter
    unchecked. Rows written before the audit existed give NaN.
    """
    succeeded = rows[rows["status"] == "succeeded"]
    if "audit_flagged" not in rows or succeeded["audit_flagged"].isna().any():
        return {"num_flagged": math.nan, "flagged_share": math.nan, "flagged_antonym_share": math.nan,
                "flagged_polarity_share": math.nan, "flagged_nonword_share": math.nan, "hole_share": math.nan}
    n = len(succeeded)

    def share(column: str) -> float:
        return float(succeeded[column].astype(bool).sum()) / n if n else math.nan

    substituted = int(succeeded["words_changed"].sum())
    return {
        "num_flagged": int(succeeded["audit_flagged"].astype(bool).sum()),
        "flagged_share": share("audit_flagged"),
        "flagged_antonym_share": share("audit_antonym"),
        "flagged_polarity_share": share("audit_polarity_flip"),
        "flagged_nonword_share": share("audit_nonword"),
        "hole_share": float(succeeded["audit_unknown_pairs"].sum()) / substituted if substituted else math.nan,
    }
