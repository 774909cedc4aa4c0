"""The sense-in-context check of strict v3 on sentences of the reading record, with the packaged encoder."""

from __future__ import annotations

import pytest

from attack_workers.lexicon.senses import SenseChooser, lemma_names_of, senses_of


@pytest.fixture(scope="module")
def chooser():
    from attack_workers.attack.sentence_encoder import load_sentence_model

    return SenseChooser(load_sentence_model("default"))


def keeps(chooser: SenseChooser, text: str, old: str, new: str, word_class: str) -> bool:
    words = text.split()
    return chooser.keeps_sense(words, words.index(old), {old}, {new}, word_class)


def test_senses_are_wordnets_in_frequency_order_and_share_satellite_names():
    senses = senses_of({"odd"}, "J")
    assert senses[0].name() == "odd.a.01" and len(senses) == len(set(senses)) >= 5
    assert "uneven" in lemma_names_of(senses[0])  # odd.a.01 "not divisible by two": the sense readers rejected
    assert senses_of({"odd"}, "X") == []


def test_a_synonym_in_another_sense_than_the_contexts_is_refused(chooser):
    # rejected by readers (docs/results/reading/study-strict*.csv)
    assert not keeps(chooser, "An odd drama set in the world of lingerie models", "odd", "uneven", "J")
    assert not keeps(chooser, "the execution of these twists is delivered", "execution", "performance", "N")


def test_a_synonym_in_the_contexts_sense_is_kept(chooser):
    # accepted by readers
    assert keeps(chooser, "Nearly every attempt at humor here is DOA.", "attempt", "endeavor", "N")
    assert keeps(chooser, "a film that creates an original and a fun experience", "creates", "makes", "V")
    assert keeps(chooser, "a clever piece of urban satire", "satire", "comedy", "N")  # WordNet relates no sense


def test_the_senses_that_fit_a_context_are_ranked_and_capped(chooser):
    words = "An odd drama set in the world".split()
    senses = senses_of({"odd"}, "J")
    fitting = chooser.senses_in_context(words, 1, senses)
    assert len(fitting) == chooser.candidates == 2 and set(fitting) <= set(senses)
    assert chooser.context(words, 1) == "An odd drama set"
    assert SenseChooser(chooser.sentence_model, candidates=len(senses)).senses_in_context(words, 1, senses) == senses
    with pytest.raises(ValueError, match="candidates=0"):
        SenseChooser(chooser.sentence_model, candidates=0)
