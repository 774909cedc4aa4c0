"""Attack protocols: the validity rules every attack obeys and how its results are counted.

``PROTOCOLS`` maps a name to a ``Protocol``: its validity rules (``Rules``: stop words, the
protocol's meaning and grammar constraints, a candidate rewrite, the sentence-pair rule) and the
default number of examples. Its metric definitions are ``attack_workers.results.metrics.PROTOCOL_METRICS``
under the same name: the store reads them there, without this package. The attack itself
(candidates, search) is the other dimension: a recipe of ``attack_workers.attack.recipes.ATTACKS``
(bert-attack, textfooler, pwws), assembled with a protocol's rules into TextAttack's four parts.
Every result row records its protocol, its attack and the ``AttackParams`` it ran with. Add a
protocol by writing a rules function and an entry here, and its metrics in ``PROTOCOL_METRICS``.

TextAttack is imported inside the builders only: reading this registry (CLI, config) stays cheap.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from attack_workers.lexicon.stopwords import ALL_STOPWORDS, BERT_ATTACK_FILTER, NLTK_ENGLISH
from attack_workers.results.keys import key_hash

WORD_SIMILARITY_THRESHOLD = 0.7
STRICT_WORD_SIMILARITY = 0.85  # calibrated: docs/results/calibration.md
STRICT_WINDOW_WORDS = 7  # the strict protocol's phrase check: 3 words either side of the swap
LONG_DOCUMENT_DATASETS = ("imdb", "yelp")  # paper 5.1.3: 300 examples instead of 1000 ("more time-consuming")


class UnknownProtocolError(KeyError):
    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


@dataclass(frozen=True)
class AttackParams:
    """Every number that changes an attack's outcome; hashed into the results key."""

    max_candidates: int = 48  # K: paper's BERT-Attack (bert_robust.py --k 48); textattack 0.3.11's recipe uses 8
    subword_positions: int = 12  # original BERT-Attack get_bpe_substitues: substitutes[0:12, 0:4] ...
    subword_top: int = 4
    subword_keep: int = 24  # ... all_substitutes[:24], ranked by perplexity
    max_perturbed: float = 0.4  # BERT-Attack: "only take eps percent of the most important words", eps = 0.4
    similarity_threshold: float = 0.2  # textattack protocol: TextAttack recipe's USE cosine >= 0.2 over the whole text
    # vda-paper protocol: counter-fitted word cosine between each original word and its substitute. The
    # authors' script uses 0.7 on their vectors; on ours the value is calibrated (docs/attacks.md):
    # the loosest threshold whose successes stay valid (audit-flagged share <= 2 % on held-out data).
    word_similarity_threshold: float = WORD_SIMILARITY_THRESHOLD
    # strict protocol: cosine from which a pair that WordNet does not list as synonyms is accepted
    strict_word_similarity_threshold: float = STRICT_WORD_SIMILARITY
    # strict protocol: how many nats less likely than the original the substitute may be in context
    strict_max_log_prob_drop: float = 1.5
    # strict protocol: sentence-encoder cosine of the 7-word windows around a swap, before and after
    strict_window_similarity: float = 0.75
    # strict v3 (docs/results/calibration.md, "strict v3"): the longest WordNet idiom whose words are never
    # swapped (2: v2's two-word rule; 1: none), a swap the audit flags as a VADER polarity flip is refused,
    # and a pair WordNet relates must share one of the senses that fit the context best (0: no sense check)
    strict_max_collocation_words: int = 4
    strict_refuse_polarity_flip: bool = True
    strict_sense_candidates: int = 2
    # textfooler recipe (Jin et al. 2020, TextAttack's TextFoolerJin2019): K nearest counter-fitted
    # neighbours with cosine >= textfooler_min_cos, and the sentence encoder's angular similarity of a
    # window around the swap >= textfooler_sentence_threshold (USE's 0.840845057; the packaged MiniLM
    # stands in: docs/attacks.md#other-attacks-textfooler-and-pwws)
    textfooler_max_candidates: int = 50
    textfooler_min_cos: float = 0.5
    textfooler_sentence_threshold: float = 0.840845057
    textfooler_window: int = 15

    def validate(self) -> AttackParams:
        problems = []
        for name in ("max_candidates", "subword_positions", "subword_top", "subword_keep",
                     "textfooler_max_candidates", "textfooler_window"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} must be >= 1")
        if not 0 < self.max_perturbed <= 1:
            problems.append(f"max_perturbed={self.max_perturbed} must be in (0, 1]")
        if not -1 <= self.similarity_threshold <= 1:
            problems.append(f"similarity_threshold={self.similarity_threshold} must be a cosine in [-1, 1]")
        for name in ("word_similarity_threshold", "strict_word_similarity_threshold", "strict_window_similarity"):
            if not 0 < getattr(self, name) <= 1:
                problems.append(f"{name}={getattr(self, name)} must be a cosine in (0, 1]")
        if not -1 <= self.textfooler_min_cos <= 1:
            problems.append(f"textfooler_min_cos={self.textfooler_min_cos} must be a cosine in [-1, 1]")
        if not 0 <= self.textfooler_sentence_threshold <= 1:
            problems.append(f"textfooler_sentence_threshold={self.textfooler_sentence_threshold} must be an "
                            "angular similarity in [0, 1]")
        if self.strict_max_collocation_words < 1 or self.strict_sense_candidates < 0:
            problems.append(f"strict_max_collocation_words={self.strict_max_collocation_words} must be >= 1 (1: no "
                            f"idiom rule) and strict_sense_candidates={self.strict_sense_candidates} >= 0 (0: off)")
        if not self.strict_max_log_prob_drop >= 0:
            problems.append(f"strict_max_log_prob_drop={self.strict_max_log_prob_drop} must be >= 0 nats")
        if problems:
            raise ValueError("invalid attack parameters: " + "; ".join(problems))
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Backbones:
    """The heavy, checkpoint-independent models an attack worker loads once."""

    mlm: Any  # masked LM proposing substitutes (frozen)
    mlm_tokenizer: Any
    sentence_model: Any  # sentence_transformers.SentenceTransformer: the textattack protocol's text similarity
    lexicon: Any  # attack_workers.lexicon.vectors.Lexicon: the vda-paper protocol's word filter and the audit's cosines
    tagger: Any  # attack_workers.lexicon.tagger.Tagger: the strict protocol's tags in context, and the audit's


@dataclass
class Rules:
    """A protocol's validity rules: what every attack recipe (``attack_workers.attack.recipes``) obeys under it.

    A protocol is these rules plus its metric definitions (``results.metrics.PROTOCOL_METRICS``); an
    attack is a recipe (candidates, the recipe's own constraints, its search) assembled with them.
    Built fresh for every attack a worker builds (constraints keep caches).
    """

    stopwords: tuple[str, ...]  # words no attack may replace (any case)
    constraints: list[Any]  # the protocol's meaning and grammar checks, after the shared ones
    rewrite: Callable[[Any, int, str], str | None] | None = None  # (text, index, candidate) -> candidate or None
    first_flip: bool = False  # BERT-Attack's search is the authors' (first flip in rank order wins)
    second_sentence_only: bool = False  # sentence pairs: only the second sentence is attacked (paper 5.1.3)

    def all_constraints(self, params: AttackParams, columns: tuple[str, ...]) -> list[Any]:
        """Every constraint of an attack under these rules: the shared ones, the protocol's, the column rule."""
        from textattack.constraints.overlap import MaxWordsPerturbed
        from textattack.constraints.pre_transformation import RepeatModification

        from attack_workers.attack.constraints import CaseInsensitiveStopwordModification, StrictInputColumnModification

        constraints = [
            RepeatModification(),  # never modify the same word twice
            CaseInsensitiveStopwordModification(set(self.stopwords)),
            MaxWordsPerturbed(max_percent=params.max_perturbed),
            *self.constraints,
        ]
        if self.second_sentence_only and len(columns) == 2:
            constraints.append(StrictInputColumnModification(list(columns), {columns[0]}))
        return constraints


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    # (backbones, params) -> Rules: the validity rules every attack obeys under this protocol
    rules: Callable[[Backbones, AttackParams], Rules]

    def default_num_examples(self, dataset_name: str) -> int:
        """Paper 5.1.3: 1000 random examples; 300 for the long IMDB and Yelp reviews."""
        long_doc = any(dataset_name.lower().startswith(d) for d in LONG_DOCUMENT_DATASETS)
        return 300 if long_doc else 1000

    def build(self, wrapper: Any, backbones: Backbones, params: AttackParams, columns: tuple[str, ...],
              attack: str = "bert-attack") -> Any:
        """The ``textattack.Attack`` of recipe ``attack`` (``recipes.ATTACKS``) under this protocol's rules."""
        from attack_workers.attack.recipes import get_attack

        return get_attack(attack).build(wrapper, backbones, params, columns, self.rules(backbones, params))


def textattack_rules(backbones: Backbones, params: AttackParams) -> Rules:
    """TextAttack's ``BERTAttackLi2020`` with offline parts: NLTK stop words, every column attackable.

    The lenient protocol: its only meaning check is a whole-text sentence-embedding cosine >= 0.2,
    which almost never rejects one swapped word in a 20-word review. Other recipes add their own
    checks under it (TextFooler's; PWWS has none).
    """
    from attack_workers.attack.sentence_encoder import LocalSentenceEncoder

    return Rules(NLTK_ENGLISH, [LocalSentenceEncoder(backbones.sentence_model, threshold=params.similarity_threshold)])


def vda_paper_rules(backbones: Backbones, params: AttackParams) -> Rules:
    """The VDA authors' script: BERT-Attack's filter words, the word-level cosine filter, first flip wins.

    bert_robust.py: ``if substitute in w2i and tgt_word in w2i: if cos_mat[...] < 0.7: continue``;
    no sentence encoder. ``WordEmbeddingDistance(include_unknown_words=True)`` has the same
    semantics: a pair where either word has no vector passes (the audit counts how often).
    """
    from textattack.constraints.semantics import WordEmbeddingDistance

    word_filter = WordEmbeddingDistance(backbones.lexicon.textattack_embedding(), include_unknown_words=True,
                                        min_cos_sim=params.word_similarity_threshold)
    return Rules(BERT_ATTACK_FILTER, [word_filter], first_flip=True, second_sentence_only=True)


def strict_rules(backbones: Backbones, params: AttackParams) -> Rules:
    """``vda-paper``'s search and budget with the human-aligned word rules of ``attack_workers.attack.strict``.

    Candidates are re-inflected to the original's tag in context before they are counted, the
    stop words are both lists, case-insensitive, in either direction, and a substitute must be a
    WordNet synonym in a sense that fits the sentence or a close counter-fitted neighbour with vectors
    on both sides, no polarity flip, outside WordNet idioms, and keep the original's tag in the new
    sentence, where the masked LM must find it at most ``strict_max_log_prob_drop`` nats less likely
    than the original word.
    """
    from attack_workers.attack.strict import MaskedLMFluency, StrictRules, StrictWordSwap, reinflect

    tagger = backbones.tagger

    def reinflected(text: Any, index: int, candidate: str) -> str | None:
        return reinflect(candidate, text.words[index], tagger.tag_at(text.words, index))

    from attack_workers.attack.sentence_encoder import LocalSentenceEncoder
    from attack_workers.lexicon.resources import load_valence
    from attack_workers.lexicon.senses import SenseChooser

    senses = (SenseChooser(backbones.sentence_model, candidates=params.strict_sense_candidates)
              if params.strict_sense_candidates else None)
    rules = StrictRules(backbones.lexicon.cosine, ALL_STOPWORDS, threshold=params.strict_word_similarity_threshold,
                        floor=params.word_similarity_threshold,
                        valence=load_valence() if params.strict_refuse_polarity_flip else None, senses=senses,
                        max_collocation_words=params.strict_max_collocation_words)

    constraints = [StrictWordSwap(rules, tagger),
                   MaskedLMFluency(backbones.mlm, backbones.mlm_tokenizer, params.strict_max_log_prob_drop),
                   # rule 6 of attack_workers.attack.strict: the windows around the swap, before and after it
                   LocalSentenceEncoder(backbones.sentence_model, threshold=params.strict_window_similarity,
                                        window_size=STRICT_WINDOW_WORDS, compare_against_original=False)]
    return Rules(tuple(sorted(ALL_STOPWORDS)), constraints, rewrite=reinflected, first_flip=True,
                 second_sentence_only=True)


PROTOCOLS: dict[str, Protocol] = {
    "textattack": Protocol(
        name="textattack",
        description="TextAttack 0.3.11 BERTAttackLi2020 (lenient: whole-text sentence cosine >= 0.2) and "
                    "textattack.metrics definitions",
        rules=textattack_rules),
    "vda-paper": Protocol(
        name="vda-paper",
        description="the VDA authors' BERT-Attack script (bert_robust.py): counter-fitted word cosine filter, "
                    "first flip wins, and its metric definitions",
        rules=vda_paper_rules),
    "strict": Protocol(
        name="strict",
        description="vda-paper's search and metrics with human-aligned word rules (after Morris et al. 2020): "
                    "same tag in context and inflection, WordNet synonym or counter-fitted cosine >= "
                    "strict_word_similarity_threshold with vectors on both sides, a WordNet sense that fits "
                    "the context, no polarity flip, idiom or stop-word swap",
        rules=strict_rules),
}


def get_protocol(name: str) -> Protocol:
    """The registered protocol ``name``; an unknown name lists close matches and every known name."""
    if name not in PROTOCOLS:
        close = difflib.get_close_matches(name, PROTOCOLS, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        known = ", ".join(sorted(PROTOCOLS))
        raise UnknownProtocolError(f"PROTOCOLS: protocol {name!r} is unknown; {hint}known: {known}")
    return PROTOCOLS[name]


def union_key(protocol: str, params: AttackParams, identity: dict[str, Any], skip_broken: bool = False) -> str:
    """Hash of everything that decides an example's outcome besides the checkpoint and the attack recipe.

    Every row stores it: the attack keys of a checkpoint that share it may be combined into a union
    (``attack_workers.results.keys.union_row_key`` names the union itself). It leaves the set of
    attacks out on purpose: a per-attack row is reused by any later evaluation with another attack
    set, so the set cannot be stored with the row. ``skip_broken`` (an example an earlier attack
    broke is not attacked by the later ones) keys another union: its per-attack rows are incomplete.
    """
    return key_hash({"protocol": protocol, "params": params.to_dict(), **identity,
                     **({"skip_broken": True} if skip_broken else {})})


def attack_key(protocol: str, params: AttackParams, identity: dict[str, Any], attack: str = "bert-attack",
               skip_broken: bool = False) -> str:
    """Hash of everything that decides an example's outcome besides the checkpoint itself: the union key's
    payload plus the attack recipe's name, so rows of two attacks never share a key."""
    return key_hash({"protocol": protocol, "params": params.to_dict(), "attack": attack, **identity,
                     **({"skip_broken": True} if skip_broken else {})})

