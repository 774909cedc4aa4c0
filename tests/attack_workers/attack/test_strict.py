"""The strict protocol's word rules on planted examples, and a strict attack whose successes obey them."""

from __future__ import annotations

import json

import pytest

from attack_workers.attack.offline import import_textattack

import_textattack()
from textattack.shared import AttackedText  # noqa: E402

from attack_workers.lexicon.relations import is_english_word  # noqa: E402
from attack_workers.attack.strict import StrictRules, StrictWordSwap, reinflect, takes_an  # noqa: E402
from attack_workers.lexicon.tagger import Tagger  # noqa: E402

COSINES = {("entertaining", "amusing"): 0.9, ("actor", "performer"): 0.9, ("watch", "see"): 0.9,
           ("watch", "watched"): 0.95, ("a", "as"): 0.9, ("satire", "irony"): 0.75, ("satire", "parody"): 0.6,
           ("film", "filmmaking"): 0.8, ("unusual", "strange"): 0.9, ("unusual", "odd"): 0.9,
           ("focus", "concentrate"): 0.9, ("effects", "results"): 0.9, ("joke", "gag"): 0.9}


@pytest.fixture(scope="module")
def tagger():
    return Tagger()


@pytest.fixture(scope="module")
def constraint(tagger):
    rules = StrictRules(lambda a, b: COSINES.get((a, b)), frozenset({"a", "as", "an"}), threshold=0.85, floor=0.7)
    return StrictWordSwap(rules, tagger)


def accepts(constraint: StrictWordSwap, text: str, old: str, new: str) -> bool:
    """Whether the constraint keeps ``text`` with ``old`` replaced by ``new`` (TextAttack's own swap)."""
    original = AttackedText(text)
    return constraint._check_constraint(original.replace_word_at_index(original.words.index(old), new), original)


def test_candidates_are_reinflected_to_the_originals_tag_or_refused():
    assert reinflect("entertained", "entertaining", "VBG") == "entertaining"  # then equal to the original: dropped
    assert reinflect("watched", "watch", "VB") == "watch"
    assert reinflect("lots", "lot", "NN") == "lot"
    assert reinflect("performers", "actor", "NN") == "performer"
    assert reinflect("poetic", "poetry", "NN") is None  # no noun form: refused
    assert reinflect("Great", "Good", "JJ") == "Great" and reinflect("great", "Good", "JJ") == "Great"


def test_a_capitalised_stop_word_is_never_swapped(constraint):
    assert not accepts(constraint, "A well-put-together piece of urban satire", "A", "as")


def test_a_change_of_tag_in_context_is_refused(constraint):
    assert not accepts(constraint, "it is simply delightful to watch an actor", "watch", "watched")
    assert accepts(constraint, "it is simply delightful to watch the actor", "actor", "performer")
    assert not accepts(constraint, "it is simply delightful to watch an actor", "actor", "performer")  # "an performer"


def test_names_titles_collocations_and_articles_stay_intact(constraint):
    # Rejections of the reading record (docs/results/reading/strict.csv) that no word rule saw.
    assert not accepts(constraint, "a film like Auto Focus is rare", "Focus", "Concentrate")  # a title
    assert accepts(constraint, "Focus is what the actor lacks", "Focus", "Concentrate")  # a sentence's first word
    assert not accepts(constraint, "stunt doubles and special effects", "effects", "results")  # special_effect
    assert not accepts(constraint, "it is a sick joke", "joke", "gag")  # sick_joke
    assert not accepts(constraint, "an unusual film", "unusual", "strange")  # "an strange"
    assert accepts(constraint, "an unusual film", "unusual", "odd")
    assert [takes_an(w) for w in ("hour", "unicorn", "odd", "strange", "European", "honest")] == [
        True, False, True, False, False, True]


def test_the_phrase_around_a_swap_must_keep_its_meaning():
    from attack_workers.attack.protocols import STRICT_WINDOW_WORDS, AttackParams
    from attack_workers.attack.sentence_encoder import LocalSentenceEncoder, load_sentence_model

    window = LocalSentenceEncoder(load_sentence_model("default"), threshold=AttackParams().strict_window_similarity,
                                  window_size=STRICT_WINDOW_WORDS)

    def kept(text: str, old: str, new: str) -> bool:
        original = AttackedText(text)
        swapped = original.replace_word_at_index(original.words.index(old), new)
        return len(window._check_constraint_many([swapped], original)) == 1

    # From the reading record: a reader rejected the first two and accepted the last two.
    assert not kept("a deliciously nonsensical comedy about a city coming apart at its seams, class reversal and all",
                    "class", "family")
    assert not kept("a movie full of stunt doubles and special effects that never stops", "effects", "results")
    assert kept("Why would anyone cast the magnificent Jackie Chan in a movie", "movie", "film")
    assert kept("we also need movies like this one", "need", "want")


def test_meaning_needs_vectors_on_both_sides_and_wordnet_or_a_close_cosine(constraint):
    text = "a clever piece of urban satire"
    assert accepts(constraint, text, "satire", "irony")  # a WordNet synonym at 0.75
    assert not accepts(constraint, text, "satire", "parody")  # below vda-paper's floor
    assert not accepts(constraint, text, "satire", "comedy")  # no vectors: the hole is closed
    assert not accepts(constraint, "the film itself was an example", "film", "filmmaking")  # 0.8 < 0.85, not WordNet


def test_only_listed_words_are_english():
    assert is_english_word("slashes") and is_english_word("entertained") and is_english_word("The")
    for guess in ("slashs", "succumbes", "bels", "andly", "cotrived"):
        assert not is_english_word(guess), guess


@pytest.fixture(scope="module")
def strict_rows(worker, review_checkpoint, tmp_path_factory, plan_shard):
    shard = plan_shard(review_checkpoint, tmp_path_factory.mktemp("store"), "strict", loose_strict=True)
    import pandas as pd

    return pd.DataFrame(worker.attack_shard(shard).rows)


def test_a_strict_attack_keeps_every_rule(strict_rows, worker):
    tagger = worker.backbones.tagger
    succeeded = strict_rows[strict_rows["status"] == "succeeded"]
    assert len(strict_rows) == 8 and len(succeeded) >= 1, "no success: the rules below would check nothing"
    for row in succeeded.itertuples():
        before, after = AttackedText(row.original_text).words, AttackedText(row.perturbed_text).words
        changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
        assert [tagger.tags(before)[i] for i in changed] == [tagger.tags(after)[i] for i in changed]
        for old, new in json.loads(row.substitutions):
            assert worker.backbones.lexicon.cosine(old.lower(), new.lower()) is not None
    assert not succeeded[["audit_hole", "audit_pos_change", "audit_inflection_change",
                          "audit_stopword_swap", "audit_nonword"]].any().any()


def test_a_substitute_the_masked_lm_finds_unidiomatic_is_refused():
    from attack_workers.attack.strict import MaskedLMFluency
    from vda.mlm import load_mlm

    fluency = MaskedLMFluency(*load_mlm("default"), max_drop=1.5)

    def fluent(text: str, old: str, new: str) -> bool:
        original = AttackedText(text)
        return fluency._check_constraint(original.replace_word_at_index(original.words.index(old), new), original)

    # Read in strict's successes before the check existed: a synonym pair that breaks the idiom.
    assert not fluent("sticking its head up for a breath of fresh air", "head", "brain")
    assert fluent("a movie full of stunt doubles and special effects", "movie", "film")
