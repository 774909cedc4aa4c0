"""The validity audit flags antonym swaps, polarity flips and non-words, and records the filter's hole."""

from __future__ import annotations

import json
import math

import pytest

from attack_workers.audit import AUDIT_COLUMNS, Auditor, substitutions

COSINES = {("good", "great"): 0.8, ("good", "bad"): 0.1, ("movie", "film"): 0.9}


def _cosine(a, b):
    return COSINES.get((a.lower(), b.lower()))


@pytest.fixture(scope="module")
def auditor():
    return Auditor(_cosine, is_known_word=lambda w: w.lower() != "andly")


def test_a_planted_antonym_swap_is_flagged(auditor):
    row = auditor.audit([("movie", "film"), ("good", "bad")])
    assert set(row) == set(AUDIT_COLUMNS)
    assert row["audit_antonym"] and row["audit_polarity_flip"] and row["audit_flagged"]
    assert not row["audit_nonword"]
    assert row["audit_min_cos"] == pytest.approx(0.1)
    assert json.loads(row["substitutions"]) == [["movie", "film"], ["good", "bad"]]


def test_meaning_preserving_swaps_are_not_flagged(auditor):
    row = auditor.audit([("Good", "great"), ("movie", "film")])
    assert not row["audit_flagged"] and row["audit_min_cos"] == pytest.approx(0.8)
    assert row["audit_unknown_pairs"] == 0


def test_polarity_flip_is_independent_of_wordnet(auditor):
    row = auditor.audit([("dull", "pleasant")])  # not a WordNet antonym pair, opposite VADER valence
    assert row["audit_polarity_flip"] and row["audit_flagged"]


def test_non_words_and_the_filters_hole_are_recorded(auditor):
    row = auditor.audit([("perpetually", "andly")])
    assert row["audit_nonword"] and row["audit_flagged"]
    assert row["audit_unknown_pairs"] == 1 and math.isnan(row["audit_min_cos"])


def test_an_unchanged_example_has_a_clean_audit(auditor):
    row = auditor.audit([])
    assert not row["audit_flagged"] and row["audit_unknown_pairs"] == 0 and math.isnan(row["audit_min_cos"])


def test_substitutions_pair_words_at_changed_indices():
    assert substitutions(["a", "good", "movie"], ["a", "bad", "film"], {2, 1}) == [("good", "bad"), ("movie", "film")]
