"""Word relations from WordNet 3.0: synonyms, antonyms and whether a string is an English word.

Used twice, for two jobs: as the linguistic constraints of counter-fitting
(``attack_workers.lexicon.vectors``) and by the validity audit (``attack_workers.lexicon.audit``).

Antonymy in WordNet is a relation between *lemmas* of a few "head" synsets ("good" <-> "bad"),
so read literally it misses most opposite pairs a review can contain (it lists smart/stupid, not
smart/dumb). ``antonyms_of`` therefore expands it the way WordNet's own documentation describes
indirect antonymy: every lemma of a synset is opposed to every lemma of the antonym's synset, and
an adjective head's antonymy extends to its satellites ("similar to" synsets). Over-expansion only
makes the filter stricter. Synonymy, by contrast, is restricted to a word's most frequent senses
(``max_sense_rank``): WordNet lists "good" in the same synset as "full", "estimable" and "ripe",
and attracting those would make the filter accept meaning-changing swaps.
"""

from __future__ import annotations

from functools import lru_cache

from attack_workers.lexicon.resources import load_wordnet

MAX_SENSE_RANK = 3  # a synonym pair must share a synset among the first 3 senses of both words


def single_word(name: str) -> str | None:
    """A WordNet lemma name as one lower-case word, or None for multi-word lemmas ("in_effect")."""
    word = name.lower()
    return word if word.replace("-", "").replace("'", "").isalpha() and "_" not in word else None


@lru_cache(maxsize=1)
def wordnet_lemmas() -> frozenset[str]:
    """Every single-word lemma of WordNet, lower-cased."""
    return frozenset(w for w in map(single_word, load_wordnet().all_lemma_names()) if w)


def is_english_word(word: str) -> bool:
    """True for a WordNet lemma, a form in lemminflect's tables, or a known function word.

    Used to refuse MLM sub-token combinations such as "andly", "cotrived" or "halftext". Only
    listed words count: WordNet's ``morphy`` would accept guesses such as "slashs", "succumbes" or
    "bels" (it strips a plausible ending and finds a lemma), and lemminflect's out-of-vocabulary
    rules would too, so neither is asked.
    """
    import lemminflect

    from attack_workers.lexicon.stopwords import BERT_ATTACK_FILTER, NLTK_ENGLISH

    lower = word.lower()
    if lower in wordnet_lemmas() or lower in NLTK_ENGLISH or lower in BERT_ATTACK_FILTER:
        return True
    return lower.isalpha() and bool(lemminflect.getAllLemmas(lower))


def _expanded(synset) -> list:  # noqa: ANN001 (nltk Synset)
    """The synset and, for an adjective head, its satellites (WordNet's indirect antonymy)."""
    return [synset, *synset.similar_tos()] if synset.pos() == "a" else [synset]


@lru_cache(maxsize=None)
def antonyms_of(word: str) -> frozenset[str]:
    """Single words opposed to ``word`` in any of its senses (expanded as in the module docstring)."""
    wn = load_wordnet()
    opposed: set[str] = set()
    for synset in wn.synsets(word.lower()):
        heads = [synset, *(s for s in synset.similar_tos() if synset.pos() == "s")]
        for head in heads:
            for lemma in head.lemmas():
                for antonym in lemma.antonyms():
                    for target in _expanded(antonym.synset()):
                        opposed.update(w for w in map(single_word, target.lemma_names()) if w)
    opposed.discard(word.lower())
    return frozenset(opposed)


@lru_cache(maxsize=None)
def synonyms_of(word: str, max_sense_rank: int = MAX_SENSE_RANK) -> frozenset[str]:
    """Single words sharing one of ``word``'s first senses, where it is also among theirs."""
    wn = load_wordnet()
    lower = word.lower()
    found: set[str] = set()
    for pos in ("n", "v", "a", "r"):
        for synset in wn.synsets(lower, pos)[:max_sense_rank]:
            for name in synset.lemma_names():
                other = single_word(name)
                if other and other != lower and synset in wn.synsets(other, pos)[:max_sense_rank]:
                    found.add(other)
    return frozenset(found - antonyms_of(lower))


def relation_pairs(vocabulary: list[str], relation) -> list[tuple[int, int]]:  # noqa: ANN001
    """Index pairs (i < j) of ``vocabulary`` related by ``relation`` (``synonyms_of``/``antonyms_of``)."""
    index = {w: i for i, w in enumerate(vocabulary)}
    pairs = set()
    for i, word in enumerate(vocabulary):
        for other in relation(word):
            j = index.get(other)
            if j is not None and j != i:
                pairs.add((min(i, j), max(i, j)))
    return sorted(pairs)
