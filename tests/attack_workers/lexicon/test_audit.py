"""The validity audit flags meaning changes (antonyms, polarity flips), broken English (part of speech,
inflection, non-words, stop-word swaps) and the filter's hole, each on planted examples."""

from __future__ import annotations

import json
import math

import pytest

from attack_workers.lexicon.audit import AUDIT_COLUMNS, Auditor, is_polarity_flip, substitutions
from attack_workers.lexicon.tagger import Tagger
from attack_workers.results.metrics import FLAG_COLUMNS, audit_summary

COSINES = {("good", "great"): 0.8, ("good", "bad"): 0.1, ("movie", "film"): 0.9, ("dull", "pleasant"): 0.2,
           ("entertaining", "entertained"): 0.9, ("poetry", "poetic"): 0.8, ("a", "as"): 0.5,
           ("lot", "lots"): 0.9}


def _cosine(a, b):
    return COSINES.get((a.lower(), b.lower()))


@pytest.fixture(scope="module")
def auditor():
    return Auditor(_cosine, is_known_word=lambda w: w.lower() != "andly", tagger=Tagger())


def audit(auditor, original: str, perturbed: str) -> dict:
    before, after = original.split(), perturbed.split()
    return auditor.audit(before, after, {i for i, (a, b) in enumerate(zip(before, after)) if a != b})


def flags(row: dict) -> set[str]:
    return {c for c in FLAG_COLUMNS if row[c]}


def test_a_planted_antonym_swap_is_flagged(auditor):
    row = audit(auditor, "a good movie with a good cast", "a bad film with a good cast")
    assert set(row) == set(AUDIT_COLUMNS)
    assert flags(row) == {"audit_antonym", "audit_polarity_flip"} and row["audit_flagged"]
    assert row["audit_min_cos"] == pytest.approx(0.1)
    assert json.loads(row["substitutions"]) == [["good", "bad"], ["movie", "film"]]


def test_meaning_preserving_swaps_are_not_flagged(auditor):
    row = audit(auditor, "Good acting in a fine movie", "great acting in a fine film")
    assert not row["audit_flagged"] and row["audit_min_cos"] == pytest.approx(0.8)
    assert row["audit_unknown_pairs"] == 0


def test_polarity_flip_is_independent_of_wordnet(auditor):
    row = audit(auditor, "the plot is dull", "the plot is pleasant")  # not a WordNet antonym pair
    assert row["audit_polarity_flip"] and row["audit_flagged"]


def test_a_polarity_flip_needs_two_clear_opposite_valences():
    # the predicate the audit flags with and strict v3 refuses with (one function for both)
    valence = {"free": 2.3, "loose": -1.3, "odd": -1.3, "mild": 0.5}
    assert is_polarity_flip(valence, "Free", "loose") and is_polarity_flip(valence, "loose", "free")
    assert not is_polarity_flip(valence, "loose", "odd")  # same sign
    assert not is_polarity_flip(valence, "odd", "mild")  # |0.5| is no clear rating
    assert not is_polarity_flip(valence, "free", "unrated")


def test_non_words_and_the_filters_hole_are_recorded(auditor):
    row = audit(auditor, "it perpetually annoys", "it andly annoys")
    assert row["audit_nonword"] and row["audit_hole"] and row["audit_flagged"]
    assert row["audit_unknown_pairs"] == 1 and math.isnan(row["audit_min_cos"])


def test_an_inflection_change_is_broken_english(auditor):
    row = audit(auditor, "it is a lot smarter", "it is a lots smarter")
    assert row["audit_inflection_change"] and not row["audit_pos_change"] and row["audit_flagged"]
    # "entertaining" is an adjective here, "entertained" a participle: a change of word class
    row = audit(auditor, "it is still entertaining to watch", "it is still entertained to watch")
    assert row["audit_pos_change"] or row["audit_inflection_change"]


def test_a_part_of_speech_change_is_flagged(auditor):
    row = audit(auditor, "the film has poetry in it", "the film has poetic in it")
    assert row["audit_pos_change"] and row["audit_flagged"]


def test_a_capitalised_stop_word_swap_is_flagged(auditor):
    row = audit(auditor, "A fine piece of satire", "as fine piece of satire")
    assert row["audit_stopword_swap"] and row["audit_flagged"]


def test_an_unchanged_example_has_a_clean_audit(auditor):
    row = auditor.audit(["a", "film"], ["a", "film"], set())
    assert not row["audit_flagged"] and row["audit_unknown_pairs"] == 0 and math.isnan(row["audit_min_cos"])


def test_the_summary_reports_meaning_and_grammar_separately(auditor):
    import pandas as pd

    rows = [audit(auditor, "a good movie", "a bad movie"), audit(auditor, "it is a lot smarter",
                                                                "it is a lots smarter"),
            audit(auditor, "a good movie", "a great movie"), audit(auditor, "a good movie", "a great movie")]
    frame = pd.DataFrame(rows).assign(status="succeeded", words_changed=1)
    summary = audit_summary(frame)
    assert summary["flagged_share"] == pytest.approx(0.5)
    assert summary["flagged_meaning_share"] == pytest.approx(0.25)
    assert summary["flagged_grammar_share"] == pytest.approx(0.25)
    assert summary["flagged_inflection_share"] == pytest.approx(0.25)


def test_substitutions_pair_words_at_changed_indices():
    assert substitutions(["a", "good", "movie"], ["a", "bad", "film"], {2, 1}) == [("good", "bad"), ("movie", "film")]
