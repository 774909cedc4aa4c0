"""Attack protocols: how BERT-Attack is assembled and how its results are counted.

``PROTOCOLS`` maps a name to a ``Protocol``: a builder that spells out TextAttack's four parts
(goal function, constraints, transformation, search), the metric definitions
(``attack_workers.results.metrics``) and the default number of examples. Every result row records its
protocol and the ``AttackParams`` it ran with. Add a protocol by writing a builder and an entry.

TextAttack is imported inside the builders only: reading this registry (CLI, store) stays cheap.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from attack_workers.results.metrics import textattack_metrics, vda_paper_metrics
from attack_workers.lexicon.stopwords import ALL_STOPWORDS, BERT_ATTACK_FILTER, NLTK_ENGLISH

WORD_SIMILARITY_THRESHOLD = 0.7
STRICT_WORD_SIMILARITY = 0.85  # calibrated: docs/results/calibration.md
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

    def validate(self) -> AttackParams:
        problems = []
        for name in ("max_candidates", "subword_positions", "subword_top", "subword_keep"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} must be >= 1")
        if not 0 < self.max_perturbed <= 1:
            problems.append(f"max_perturbed={self.max_perturbed} must be in (0, 1]")
        if not -1 <= self.similarity_threshold <= 1:
            problems.append(f"similarity_threshold={self.similarity_threshold} must be a cosine in [-1, 1]")
        for name in ("word_similarity_threshold", "strict_word_similarity_threshold"):
            if not 0 < getattr(self, name) <= 1:
                problems.append(f"{name}={getattr(self, name)} must be a cosine in (0, 1]")
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


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    # (model wrapper, backbones, params, text columns) -> textattack.Attack
    build: Callable[[Any, Backbones, AttackParams, tuple[str, ...]], Any]
    summarize: Callable[[pd.DataFrame], dict[str, float]]

    def default_num_examples(self, dataset_name: str) -> int:
        """Paper 5.1.3: 1000 random examples; 300 for the long IMDB and Yelp reviews."""
        long_doc = any(dataset_name.lower().startswith(d) for d in LONG_DOCUMENT_DATASETS)
        return 300 if long_doc else 1000


def _common_parts(backbones: Backbones, params: AttackParams, stopwords: tuple[str, ...],
                  rewrite: Any = None) -> tuple[Any, list[Any]]:
    """BERT-Attack's transformation (real words only) and the constraints every protocol shares."""
    from textattack.constraints.overlap import MaxWordsPerturbed
    from textattack.constraints.pre_transformation import RepeatModification

    from attack_workers.attack.constraints import CaseInsensitiveStopwordModification
    from attack_workers.lexicon.relations import is_english_word
    from attack_workers.attack.transformation import BertAttackWordSwap

    transformation = BertAttackWordSwap(
        backbones.mlm, backbones.mlm_tokenizer, max_candidates=params.max_candidates,
        subword_positions=params.subword_positions, subword_top=params.subword_top,
        subword_keep=params.subword_keep, is_word=is_english_word, rewrite=rewrite)
    constraints = [
        RepeatModification(),  # never modify the same word twice
        CaseInsensitiveStopwordModification(set(stopwords)),
        MaxWordsPerturbed(max_percent=params.max_perturbed),
    ]
    return transformation, constraints


def build_textattack(wrapper: Any, backbones: Backbones, params: AttackParams, columns: tuple[str, ...]) -> Any:
    """TextAttack's ``BERTAttackLi2020`` with offline parts: NLTK stop words, every column attackable.

    The lenient protocol: its only meaning check is a whole-text sentence-embedding cosine >= 0.2,
    which almost never rejects one swapped word in a 20-word review.
    """
    from textattack import Attack
    from textattack.goal_functions import UntargetedClassification
    from textattack.search_methods import GreedyWordSwapWIR

    from attack_workers.attack.sentence_encoder import LocalSentenceEncoder

    transformation, constraints = _common_parts(backbones, params, NLTK_ENGLISH)
    constraints.append(LocalSentenceEncoder(backbones.sentence_model, threshold=params.similarity_threshold))
    goal = UntargetedClassification(wrapper, model_batch_size=wrapper.batch_size)
    return Attack(goal, constraints, transformation, GreedyWordSwapWIR(wir_method="unk"))


def build_vda_paper(wrapper: Any, backbones: Backbones, params: AttackParams, columns: tuple[str, ...]) -> Any:
    """The VDA authors' script: BERT-Attack's filter words, the word-level cosine filter, first flip wins.

    bert_robust.py: ``if substitute in w2i and tgt_word in w2i: if cos_mat[...] < 0.7: continue``;
    no sentence encoder. ``WordEmbeddingDistance(include_unknown_words=True)`` has the same
    semantics: a pair where either word has no vector passes (the audit counts how often).
    """
    from textattack.constraints.semantics import WordEmbeddingDistance

    transformation, constraints = _common_parts(backbones, params, BERT_ATTACK_FILTER)
    constraints.append(WordEmbeddingDistance(backbones.lexicon.textattack_embedding(), include_unknown_words=True,
                                             min_cos_sim=params.word_similarity_threshold))
    return _first_flip_attack(wrapper, transformation, constraints, columns)


def build_strict(wrapper: Any, backbones: Backbones, params: AttackParams, columns: tuple[str, ...]) -> Any:
    """``vda-paper``'s search and budget with the human-aligned word rules of ``attack_workers.attack.strict``.

    Candidates are re-inflected to the original's tag in context before they are counted, the
    stop words are both lists, case-insensitive, in either direction, and a substitute must be a
    WordNet synonym or a close counter-fitted neighbour with vectors on both sides and keep the
    original's tag in the new sentence, where the masked LM must find it at most
    ``strict_max_log_prob_drop`` nats less likely than the original word.
    """
    from attack_workers.attack.strict import MaskedLMFluency, StrictRules, StrictWordSwap, reinflect

    tagger = backbones.tagger

    def reinflected(text: Any, index: int, candidate: str) -> str | None:
        return reinflect(candidate, text.words[index], tagger.tag_at(text.words, index))

    transformation, constraints = _common_parts(backbones, params, tuple(sorted(ALL_STOPWORDS)), rewrite=reinflected)
    rules = StrictRules(backbones.lexicon.cosine, ALL_STOPWORDS, threshold=params.strict_word_similarity_threshold,
                        floor=params.word_similarity_threshold)
    constraints.append(StrictWordSwap(rules, tagger))
    constraints.append(MaskedLMFluency(backbones.mlm, backbones.mlm_tokenizer, params.strict_max_log_prob_drop))
    return _first_flip_attack(wrapper, transformation, constraints, columns)


def _first_flip_attack(wrapper: Any, transformation: Any, constraints: list[Any], columns: tuple[str, ...]) -> Any:
    """The authors' search (first flip in the MLM's rank order wins) and, for pairs, the second sentence only."""
    from textattack import Attack
    from textattack.goal_functions import UntargetedClassification

    from attack_workers.attack.constraints import StrictInputColumnModification
    from attack_workers.attack.search import FirstSuccessGreedyWIR

    if len(columns) == 2:  # paper 5.1.3: "for sentence-pair classification datasets ... we attack the second sentence"
        constraints.append(StrictInputColumnModification(list(columns), {columns[0]}))
    goal = UntargetedClassification(wrapper, model_batch_size=wrapper.batch_size)
    return Attack(goal, constraints, transformation, FirstSuccessGreedyWIR())


PROTOCOLS: dict[str, Protocol] = {
    "textattack": Protocol(
        name="textattack",
        description="TextAttack 0.3.11 BERTAttackLi2020 (lenient: whole-text sentence cosine >= 0.2) and "
                    "textattack.metrics definitions",
        build=build_textattack, summarize=textattack_metrics),
    "vda-paper": Protocol(
        name="vda-paper",
        description="the VDA authors' BERT-Attack script (bert_robust.py): counter-fitted word cosine filter, "
                    "first flip wins, and its metric definitions",
        build=build_vda_paper, summarize=vda_paper_metrics),
    "strict": Protocol(
        name="strict",
        description="vda-paper's search and metrics with human-aligned word rules (after Morris et al. 2020): "
                    "same tag in context and inflection, WordNet synonym or counter-fitted cosine >= "
                    "strict_word_similarity_threshold with vectors on both sides, no stop-word swap",
        build=build_strict, summarize=vda_paper_metrics),
}


def get_protocol(name: str) -> Protocol:
    """The registered protocol ``name``; an unknown name lists close matches and every known name."""
    if name not in PROTOCOLS:
        close = difflib.get_close_matches(name, PROTOCOLS, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        known = ", ".join(sorted(PROTOCOLS))
        raise UnknownProtocolError(f"PROTOCOLS: protocol {name!r} is unknown; {hint}known: {known}")
    return PROTOCOLS[name]


def attack_key(protocol: str, params: AttackParams, identity: dict[str, Any]) -> str:
    """Hash of everything that decides an example's outcome besides the checkpoint itself."""
    payload = {"protocol": protocol, "params": params.to_dict(), **identity}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
