"""One definition of a whole word, shared by the lexicon's vocabulary, the audit and the attack's candidates."""

from __future__ import annotations

import pytest

from attack_workers.lexicon.words import is_whole_word, text_words, whole_word_tokens


@pytest.mark.parametrize("text, expected", [
    ("film", True), ("don't", True), ("well-made", True), ("stanisław", True), ("ə", True), ("résumé", True),
    ("##ing", False), ("1990", False), ("10th", False), ("½", False), ("×", False), ("`", False), ("", False),
    ("-film", False), ("film'", False), ("rock--roll", False), ("a b", False), ("[CLS]", False), ("a_b", False),
])
def test_a_whole_word_is_letters_with_inner_apostrophes_or_hyphens(text, expected):
    assert is_whole_word(text) is expected


def test_text_words_are_the_lower_case_whole_words():
    words = text_words("A résumé, 8/10: well-made (don't) ½-baked")
    assert words == {"a", "résumé", "well-made", "don't", "baked"}


@pytest.fixture(scope="module")
def mlm():
    from vda.mlm import load_mlm

    return load_mlm("default")


def test_every_single_token_candidate_has_a_vector_and_counts_as_a_word(mlm):
    """The three former definitions disagreed: the lexicon took ASCII tokens only (756 whole-word tokens
    such as "stanisław" had no vector), the candidates also took digits and "½", "×", "`". Fails on the
    code before (no ``words`` module; and the vocabulary missed those tokens)."""
    from attack_workers.attack.transformation import BertAttackWordSwap
    from attack_workers.lexicon.vectors import load_lexicon

    model, tokenizer = mlm
    tokens = whole_word_tokens(tokenizer)
    assert len(tokens) > 20000 and "stanisław" in tokens and "½" not in tokens and "##s" not in tokens
    vocabulary = set(load_lexicon().words)
    assert {t.lower() for t in tokens} <= vocabulary  # no single-token candidate falls in the filter's hole
    swap = BertAttackWordSwap(model, tokenizer, max_candidates=8)
    accepted = {t for t, i in tokenizer.get_vocab().items() if swap._as_word([i]) is not None}
    assert accepted == set(tokens)
