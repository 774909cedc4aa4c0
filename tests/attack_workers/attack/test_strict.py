"""The strict protocol's word rules on planted examples, and a strict attack whose successes obey them."""

from __future__ import annotations

import json

import pytest

from attack_workers.attack.offline import import_textattack

import_textattack()
from textattack.shared import AttackedText  # noqa: E402

from attack_workers.lexicon.relations import is_english_word  # noqa: E402
from attack_workers.attack.strict import StrictRules, StrictWordSwap, in_collocation, reinflect, takes_an  # noqa: E402
from attack_workers.lexicon.tagger import Tagger  # noqa: E402

COSINES = {("entertaining", "amusing"): 0.9, ("actor", "performer"): 0.9, ("watch", "see"): 0.9,
           ("watch", "watched"): 0.95, ("a", "as"): 0.9, ("satire", "irony"): 0.75, ("satire", "parody"): 0.6,
           ("film", "filmmaking"): 0.8, ("unusual", "strange"): 0.9, ("unusual", "odd"): 0.9,
           ("focus", "concentrate"): 0.9, ("effects", "results"): 0.9, ("joke", "gag"): 0.9,
           ("mill", "factory"): 0.9, ("view", "perspective"): 0.9, ("free", "loose"): 0.9, ("odd", "uneven"): 0.9,
           ("attempt", "endeavor"): 0.9, ("movie", "film"): 0.9}


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


def test_a_word_of_an_idiom_of_up_to_four_words_is_never_swapped(constraint):
    # strict v3, from the MR study's reading record (docs/results/reading/study-strict*.csv)
    assert not accepts(constraint, "this is run of the mill stuff", "mill", "factory")  # WordNet: run-of-the-mill
    assert not accepts(constraint, "told from the point of view of a dog", "view", "perspective")  # point_of_view
    assert accepts(constraint, "a movie with a view of the sea", "view", "perspective")  # no idiom here
    words = "this is run of the mill stuff".split()
    assert in_collocation(words, 5, 4) and not in_collocation(words, 5, 2)  # v2's two-word rule missed it
    assert not in_collocation(words, 1, 4)


@pytest.fixture(scope="module")
def v3_parts():
    """What the v3 meaning rules load: VADER's valence and the sense chooser with the packaged encoder."""
    from attack_workers.attack.sentence_encoder import load_sentence_model
    from attack_workers.lexicon.resources import load_valence
    from attack_workers.lexicon.senses import SenseChooser

    return {"valence": load_valence(), "senses": SenseChooser(load_sentence_model("default"))}


def with_rules(tagger, **v3) -> StrictWordSwap:
    """The planted constraint with the given v3 meaning rules on (``valence``, ``senses``)."""
    rules = StrictRules(lambda a, b: COSINES.get((a, b)), frozenset({"a", "as", "an"}), threshold=0.85, floor=0.7,
                        **v3)
    return StrictWordSwap(rules, tagger)


def test_a_polarity_flip_the_audit_flags_is_refused(tagger, v3_parts, constraint):
    text = "a gracefully free film of contrived twists"
    assert not accepts(with_rules(tagger, valence=v3_parts["valence"]), text, "free", "loose")  # VADER +2.3, -1.3
    assert accepts(constraint, text, "free", "loose")  # v2 let it through (the MR study's flagged successes)


def test_a_synonym_of_another_sense_than_the_contexts_is_refused(tagger, v3_parts, constraint):
    odd = "An odd drama set in the world of lingerie models"
    assert not accepts(with_rules(tagger, senses=v3_parts["senses"]), odd, "odd", "uneven")  # odd.a.01: "not
    assert accepts(constraint, odd, "odd", "uneven")  # divisible by two"; v2: WordNet's first sense was enough


def test_good_synonyms_still_pass_every_v3_rule(tagger, v3_parts):
    v3 = with_rules(tagger, **v3_parts)
    # Swaps readers accepted (docs/results/reading/study-strict*.csv)
    assert accepts(v3, "Nearly every attempt at humor here is DOA.", "attempt", "endeavor")
    assert accepts(v3, "Why would anyone cast him in a movie full of stunt doubles", "movie", "film")
    assert accepts(v3, "a clever piece of urban satire", "satire", "irony")


def test_the_v3_parameters_are_validated():
    from attack_workers.attack.protocols import AttackParams

    assert AttackParams(strict_max_collocation_words=2, strict_sense_candidates=0).validate()
    with pytest.raises(ValueError, match="strict_max_collocation_words=0"):
        AttackParams(strict_max_collocation_words=0).validate()
    with pytest.raises(ValueError, match="strict_sense_candidates=-1"):
        AttackParams(strict_sense_candidates=-1).validate()


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
