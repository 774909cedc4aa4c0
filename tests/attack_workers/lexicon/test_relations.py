"""WordNet relations: expanded antonyms, sense-restricted synonyms, real-word checks."""

from __future__ import annotations

import pytest

from attack_workers.lexicon.relations import antonyms_of, is_english_word, relation_pairs, synonyms_of


def test_antonyms_spread_through_synsets_and_satellites():
    assert "bad" in antonyms_of("good")
    assert "dumb" in antonyms_of("smart")  # WordNet lists smart/stupid only; the synset expansion adds dumb
    assert "boring" in antonyms_of("fascinating") and "hate" in antonyms_of("love")
    assert "film" not in antonyms_of("movie")


def test_synonyms_keep_to_frequent_senses_and_exclude_antonyms():
    assert "film" in synonyms_of("movie")
    assert "tedious" in synonyms_of("boring")
    assert "full" not in synonyms_of("good")  # shares only a rare sense of "good"
    for word in ("good", "smart", "dull"):
        assert not synonyms_of(word) & antonyms_of(word)


@pytest.mark.parametrize("word", ["andly", "resurres", "iting", "cotrived", "halftext"])
def test_spelled_together_non_words_are_rejected(word):
    assert not is_english_word(word)


@pytest.mark.parametrize("word", ["perpetually", "resurrects", "movies", "contrived", "Film"])
def test_words_and_their_inflections_are_accepted(word):
    assert is_english_word(word)


def test_relation_pairs_are_index_pairs_within_the_vocabulary():
    vocabulary = ["bad", "film", "good", "movie", "zzz"]
    assert relation_pairs(vocabulary, antonyms_of) == [(0, 2)]
    assert relation_pairs(vocabulary, synonyms_of) == [(1, 3)]
