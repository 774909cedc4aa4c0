"""The default lexicon (built by ``make setup``): counter-fitting separates antonyms, keeps synonyms."""

from __future__ import annotations

import pytest

from attack_workers.lexicon.vectors import Lexicon, evaluate_lexicon, load_lexicon, split_holdout
from attack_workers.attack.protocols import WORD_SIMILARITY_THRESHOLD


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return load_lexicon()


@pytest.mark.parametrize("a, b", [("good", "bad"), ("love", "hate"), ("best", "worst"), ("smart", "dumb"),
                                  ("predictable", "unpredictable")])
def test_known_antonyms_fall_below_the_threshold(lexicon, a, b):
    assert lexicon.cosine(a, b) < WORD_SIMILARITY_THRESHOLD


@pytest.mark.parametrize("a, b", [("movie", "film"), ("terrible", "awful"), ("funny", "hilarious")])
def test_known_synonyms_stay_above_the_threshold(lexicon, a, b):
    assert lexicon.cosine(a, b) >= WORD_SIMILARITY_THRESHOLD


def test_counter_fitting_moved_an_antonym_pair_down(lexicon):
    import numpy as np

    base = np.load(lexicon.directory / "base_vectors.npy")
    i, j = lexicon.index["good"], lexicon.index["bad"]
    assert float(base[i] @ base[j]) >= WORD_SIMILARITY_THRESHOLD - 0.2 > lexicon.cosine("good", "bad")


def test_words_without_vectors_have_no_cosine(lexicon):
    assert lexicon.cosine("good", "qwertyuiop") is None
    assert lexicon.cosine("GOOD", "Great") == lexicon.cosine("good", "great")


def test_textattack_embedding_agrees_with_the_lexicon(lexicon):
    embedding = lexicon.textattack_embedding()
    assert embedding.get_cos_sim("movie", "film") == pytest.approx(lexicon.cosine("movie", "film"), abs=1e-5)


def test_heldout_evaluation_reports_generalisation(lexicon):
    rows = {(r["vectors"], r["threshold"]): r for r in evaluate_lexicon(lexicon, (WORD_SIMILARITY_THRESHOLD,))}
    fitted, base = rows[("counter-fitted", WORD_SIMILARITY_THRESHOLD)], rows[("base", WORD_SIMILARITY_THRESHOLD)]
    assert fitted["heldout antonyms n"] > 1000
    assert fitted["heldout antonyms rejected"] > base["heldout antonyms rejected"]
    assert fitted["heldout close antonyms rejected"] >= 0.95 > base["heldout close antonyms rejected"]
    assert fitted["random pairs rejected"] > 0.99  # counter-fitting did not merge unrelated words


def test_holdout_split_is_seeded_and_disjoint():
    pairs = [(i, i + 1) for i in range(100)]
    train, held = split_holdout(pairs, seed=3)
    assert (train, held) == split_holdout(pairs, seed=3) and len(held) == 20
    assert not set(train) & set(held) and sorted(train + held) == pairs
