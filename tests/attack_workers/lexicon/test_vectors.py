"""The default lexicon (built by ``make setup``): counter-fitting separates antonyms, keeps synonyms."""

from __future__ import annotations

import pytest

from attack_workers.lexicon.vectors import (Lexicon, evaluate_lexicon, load_lexicon, relation_components,
                                           split_components, split_holdout)
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


def _graph():
    """A giant cluster (words 0-29, chained by synonyms, with antonyms across it) and 20 small ones."""
    synonyms = [(i, i + 1) for i in range(29)]
    antonyms = [(i, i + 15) for i in range(15)]
    for k in range(20):
        a = 100 + 3 * k
        synonyms.append((a, a + 1))
        antonyms.append((a, a + 2))
    return sorted(synonyms), sorted(antonyms)


def test_component_split_holds_out_whole_components_and_no_training_word():
    synonyms, antonyms = _graph()
    train_syn, held_syn, train_ant, held_ant = split_components(synonyms, antonyms, seed=3)
    assert sorted(train_syn + held_syn) == synonyms and sorted(train_ant + held_ant) == antonyms
    held_words = {w for p in held_syn + held_ant for w in p}
    train_words = {w for p in train_syn + train_ant for w in p}
    assert held_words and not held_words & train_words  # no word of a held-out pair is in a training pair
    component = relation_components(synonyms, antonyms)
    held_components = {component[w] for w in held_words}
    assert all(component[a] not in held_components for a, _ in train_syn + train_ant)  # whole components
    assert 0 not in held_components  # the giant component (44 of 84 pairs) exceeds the 20 % budget
    held = len(held_syn) + len(held_ant)
    assert 0.15 * 84 < held <= 0.2 * 84
    assert split_components(synonyms, antonyms, seed=3) == (train_syn, held_syn, train_ant, held_ant)
    assert split_components(synonyms, antonyms, seed=4) != (train_syn, held_syn, train_ant, held_ant)


def test_random_split_shares_words_with_training_pairs():
    """Why the component split exists: a random split of the same graph leaks held-out words into training."""
    synonyms, antonyms = _graph()
    train_syn, held_syn = split_holdout(synonyms, seed=0)
    train_ant, held_ant = split_holdout(antonyms, seed=1)
    held_words = {w for p in held_syn + held_ant for w in p}
    assert held_words & {w for p in train_syn + train_ant for w in p}


def test_the_vocabulary_comes_from_the_attacked_dataset():
    """Another corpus's words join its lexicon (else its swaps pass the filter unchecked); a dataset the
    default vocabulary covers shares the default lexicon. Fails on the code before (MR hard-coded)."""
    from transformers import AutoTokenizer

    from attack_workers.lexicon.vectors import LexiconSpec, spec_for_task
    from vda.config import DataConfig
    from vda.data import Example, TaskData, load_task
    from vda.mlm import resolve_mlm_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_mlm_path("default"))
    other = TaskData("other", ("a", "b"), ("text", "text_b"), {
        "train": [Example("t0", "The zyzzogeton quibbled", "a snollygoster's gambit", 0)],
        "dev": [Example("d0", "movie", None, 1)], "test": []})
    spec = spec_for_task(other, mlm_tokenizer=tokenizer)
    assert spec.extra_words == ("gambit", "quibbled", "snollygoster's", "zyzzogeton")  # both texts, every split
    assert spec != LexiconSpec()
    reviews = load_task(DataConfig(dataset="tests/attack_workers/data/reviews"))
    assert spec_for_task(reviews, mlm_tokenizer=tokenizer) == LexiconSpec()  # covered: the default lexicon
    with pytest.raises(ValueError, match="sorted"):
        LexiconSpec(extra_words=("b", "a"))
