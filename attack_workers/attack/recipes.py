"""Attack recipes: which words an attack proposes and how it searches, whatever the protocol.

An attack and a protocol are two dimensions. A protocol (``protocols.PROTOCOLS``) is the validity
rules every attack obeys (stop words, meaning and grammar constraints, the strict protocol's
re-inflection, the sentence-pair rule; ``protocols.Rules``) plus the metric definitions. An attack
(``ATTACKS``) is a recipe: a transformation, the recipe's own constraints and a search. A
recipe is built with a protocol's rules into one ``textattack.Attack``:

- ``bert-attack`` (Li et al. 2020): the masked LM's top-K candidates (``transformation.BertAttackWordSwap``),
  [UNK] leave-one-out word importance; under ``vda-paper`` and ``strict`` the authors' search (first
  flip in the MLM's rank order wins, ``search.FirstSuccessGreedyWIR``), under ``textattack``
  TextAttack's greedy search.
- ``textfooler`` (Jin et al. 2020; TextAttack's ``TextFoolerJin2019``): the 50 nearest counter-fitted
  neighbours with cosine >= 0.5 (``word_swaps.CounterFittedNeighbourSwap``), the same word class in
  context (``word_swaps.PartOfSpeechConsistency``), the sentence encoder's angular similarity of a
  15-word window around the swap >= 0.840845057 against the text before it (the packaged MiniLM
  stands in for USE), deletion word importance and TextAttack's greedy search (``GreedyWordSwapWIR("delete")``).
- ``pwws`` (Ren et al. 2019; TextAttack's ``PWWSRen2019``): WordNet synonyms (``word_swaps.WordNetSynonymSwap``),
  probability-weighted word saliency (``GreedyWordSwapWIR("weighted-saliency")``).

Every recipe also gets the rules every protocol shares: at most ``max_perturbed`` of the words,
each once, no stop word, no number, negation or un-/in- form, only real English words.

This module imports TextAttack inside the builders only: reading the registry (CLI, config) stays cheap.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

DEFAULT_ATTACK = "bert-attack"


class UnknownAttackError(ValueError):
    """An attack name that is not in ``ATTACKS``; the message lists close matches and every known name."""


@dataclass(frozen=True)
class AttackRecipe:
    name: str
    description: str
    # (model wrapper, backbones, params, text columns, protocol rules) -> textattack.Attack
    build: Callable[[Any, Any, Any, tuple[str, ...], Any], Any]


def _goal(wrapper: Any) -> Any:
    from textattack.goal_functions import UntargetedClassification

    return UntargetedClassification(wrapper, model_batch_size=wrapper.batch_size)


def build_bert_attack(wrapper: Any, backbones: Any, params: Any, columns: tuple[str, ...], rules: Any) -> Any:
    """BERT-Attack's transformation (real words only, the protocol's rewrite) and the protocol's search."""
    from textattack import Attack
    from textattack.search_methods import GreedyWordSwapWIR

    from attack_workers.attack.search import FirstSuccessGreedyWIR
    from attack_workers.attack.transformation import BertAttackWordSwap
    from attack_workers.lexicon.relations import is_english_word

    transformation = BertAttackWordSwap(
        backbones.mlm, backbones.mlm_tokenizer, max_candidates=params.max_candidates,
        subword_positions=params.subword_positions, subword_top=params.subword_top,
        subword_keep=params.subword_keep, is_word=is_english_word, rewrite=rules.rewrite)
    search = FirstSuccessGreedyWIR() if rules.first_flip else GreedyWordSwapWIR(wir_method="unk")
    return Attack(_goal(wrapper), rules.all_constraints(params, columns), transformation, search)


def textfooler_sentence_encoder(backbones: Any, params: Any) -> Any:
    """TextFooler's sentence check: angular similarity of a window around the swap, against the text before it.

    TextAttack's recipe: ``UniversalSentenceEncoder(threshold=0.840845057, metric="angular",
    compare_against_original=False, window_size=15, skip_text_shorter_than_window=True)``; the
    packaged MiniLM takes USE's place with the same threshold (docs/attacks.md says how it maps).
    """
    from attack_workers.attack.sentence_encoder import LocalSentenceEncoder

    return LocalSentenceEncoder(backbones.sentence_model, threshold=params.textfooler_sentence_threshold,
                                metric="angular", compare_against_original=False,
                                window_size=params.textfooler_window, skip_text_shorter_than_window=True)


def build_textfooler(wrapper: Any, backbones: Any, params: Any, columns: tuple[str, ...], rules: Any) -> Any:
    """TextFooler: counter-fitted neighbours, part of speech, sentence encoder, deletion importance."""
    from textattack import Attack
    from textattack.constraints.semantics import WordEmbeddingDistance
    from textattack.search_methods import GreedyWordSwapWIR

    from attack_workers.attack.word_swaps import CounterFittedNeighbourSwap, PartOfSpeechConsistency
    from attack_workers.lexicon.relations import is_english_word

    transformation = CounterFittedNeighbourSwap(backbones.lexicon, max_candidates=params.textfooler_max_candidates,
                                                min_cos=params.textfooler_min_cos, is_word=is_english_word,
                                                rewrite=rules.rewrite)
    # The neighbours already have cosine >= min_cos; a rewritten candidate (strict's re-inflection) may not.
    word_filter = WordEmbeddingDistance(backbones.lexicon.textattack_embedding(), include_unknown_words=False,
                                        min_cos_sim=params.textfooler_min_cos)
    shared = rules.all_constraints(params, columns)
    # Every constraint must pass, so their order changes no outcome, only the cost: TextAttack checks
    # them in order on the candidates still left, so the cheap ones go first.
    constraints = [*shared[:3], word_filter, PartOfSpeechConsistency(backbones.tagger, allow_verb_noun_swap=True),
                   *shared[3:], textfooler_sentence_encoder(backbones, params)]
    return Attack(_goal(wrapper), constraints, transformation, GreedyWordSwapWIR(wir_method="delete"))


def build_pwws(wrapper: Any, backbones: Any, params: Any, columns: tuple[str, ...], rules: Any) -> Any:
    """PWWS: WordNet synonyms, probability-weighted word saliency."""
    from textattack import Attack
    from textattack.search_methods import GreedyWordSwapWIR

    from attack_workers.attack.word_swaps import WordNetSynonymSwap
    from attack_workers.lexicon.relations import is_english_word

    transformation = WordNetSynonymSwap(is_word=is_english_word, rewrite=rules.rewrite)
    return Attack(_goal(wrapper), rules.all_constraints(params, columns), transformation,
                  GreedyWordSwapWIR(wir_method="weighted-saliency"))


# The order is attack_workers.results.keys.ATTACK_ORDER (tables and union choices sort by it), and no
# recipe may be named keys.UNION: tests/attack_workers/attack/test_recipes.py checks both.
ATTACKS: dict[str, AttackRecipe] = {
    "bert-attack": AttackRecipe(
        "bert-attack", "BERT-Attack (Li et al. 2020): the masked LM's top-K candidates, [UNK] word importance",
        build_bert_attack),
    "textfooler": AttackRecipe(
        "textfooler", "TextFooler (Jin et al. 2020): 50 nearest counter-fitted neighbours (cosine >= 0.5), same "
                      "word class, sentence-encoder window similarity (MiniLM for USE), deletion importance",
        build_textfooler),
    "pwws": AttackRecipe(
        "pwws", "PWWS (Ren et al. 2019): WordNet synonyms, probability-weighted word saliency", build_pwws),
}


def get_attack(name: str) -> AttackRecipe:
    """The registered recipe ``name``; an unknown name lists close matches and every known name."""
    if name not in ATTACKS:
        close = difflib.get_close_matches(name, ATTACKS, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UnknownAttackError(f"ATTACKS: attack {name!r} is unknown; {hint}known: {', '.join(sorted(ATTACKS))}")
    return ATTACKS[name]


def parse_attacks(value: str | Iterable[str]) -> tuple[str, ...]:
    """The attack names of ``--attacks``/``sweep.attack.attacks`` ("bert-attack,pwws" or a list), validated.

    The one place attack lists are checked: not empty, no repeats, every name in ``ATTACKS``. The
    order is kept: it is the order in which ``skip_broken`` runs them.
    """
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else [str(n).strip() for n in value]
    names = [n for n in names if n]
    if not names:
        raise UnknownAttackError(f"no attack given; use one or more of {', '.join(sorted(ATTACKS))}, "
                                 "comma-separated")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UnknownAttackError(f"attack(s) {', '.join(repeated)} given twice")
    for name in names:
        get_attack(name)
    return tuple(names)
