"""The attack's word lexicon: counter-fitted word vectors, built offline, cached by content.

Why: the VDA authors' BERT-Attack script keeps a substitute only when the cosine between the
original word and the substitute, in counter-fitted word vectors, is at least 0.7
(``if substitute in w2i and tgt_word in w2i: if cos < 0.7: continue``). Without that filter the
attack swaps "good" for "bad" and scores every model near zero. Those vectors are not reachable
offline, so they are rebuilt here by the same method on what the machine has:

- vocabulary: every lower-case whole-word token of the MLM (what single-token candidates can be;
  ``attack_workers.lexicon.words``), every word of the MR corpus, and every word of the dataset the
  attack is run on that these lack (``spec_for_task``: a checkpoint's dataset gets the words it
  can contain, so another corpus does not get a weaker filter; a dataset the base vocabulary
  already covers, MR among them, shares the default lexicon). A word outside it has no vector,
  and a pair with such a word passes the filter as in the script (the audit counts these: the
  summary's hole share, per dataset);
- base vectors: single-word sentence embeddings of the packaged all-MiniLM-L6-v2 encoder
  (movie/film 0.84, terrible/awful 0.85, but good/bad 0.59);
- constraints: WordNet 3.0 synonyms and antonyms (``attack_workers.lexicon.relations``), of which a
  seeded random 20 % of each kind is held out to measure how the filter generalises. Random pairs
  over-state that: the words of a held-out pair sit in training pairs too. ``holdout="components"``
  (an evaluation build, ``python -m attack_workers.lexicon report``) holds out whole connected
  components of the synonym/antonym graph instead (``split_components``);
- counter-fitting (``attack_workers.lexicon.counterfit``), seeded and bit-reproducible on one
  machine, whatever its thread count: two builds of one recipe give one content hash, so a
  cluster node that lacks the planner's lexicon builds its own and may use it when the hashes
  agree (``attack_workers.runtime.worker``). Another CPU or torch version may round differently:
  rows are keyed by the content hash, and a worker whose build differs refuses the shard.

The result lives in ``<vda cache>/lexicon/<recipe>/`` where ``recipe`` hashes every input (encoder,
MLM vocabulary, corpus, WordNet, settings, this module's version); ``content_hash`` hashes the
built vectors and goes into every attack key, so rebuilt vectors never mix with old rows. Built
once on first use (about 2-4 minutes on 2 cores), atomically, so concurrent workers never see a
half-written lexicon.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from attack_workers.lexicon.counterfit import CounterFitConfig
from attack_workers.lexicon.words import text_words, whole_word_tokens

log = logging.getLogger("attack_workers")

LEXICON_VERSION = 2  # bump when the build changes in a way the recipe does not capture
# 2: gradients summed in a fixed order (counterfit._PairDot), words.is_whole_word, per-dataset words
HOLDOUT_FRACTION = 0.2
HOLDOUT_SPLITS = ("random", "components")
CLOSE_ANTONYMS = 0.6  # base cosine from which an antonym pair counts as "close" in the evaluation


@dataclass(frozen=True)
class LexiconSpec:
    """Everything that decides the built vectors; its hash names the cache directory."""

    encoder: str = "default"  # sentence-transformers directory for the base vectors
    mlm: str = "default"  # the MLM whose whole-word tokens join the vocabulary
    seed: int = 0
    counterfit: CounterFitConfig = CounterFitConfig()
    holdout: str = "random"  # HOLDOUT_SPLITS: random pairs (what attacks use) or whole components (evaluation)
    extra_words: tuple[str, ...] = ()  # sorted words of the attacked dataset the base vocabulary lacks

    def __post_init__(self) -> None:
        if self.holdout not in HOLDOUT_SPLITS:
            raise ValueError(f"holdout={self.holdout!r}: use one of {', '.join(HOLDOUT_SPLITS)}")
        if list(self.extra_words) != sorted(set(self.extra_words)):
            raise ValueError("extra_words must be sorted and unique (use spec_for_task)")


class Lexicon:
    """Unit word vectors with their vocabulary; ``cosine`` is the filter's similarity."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.meta: dict[str, Any] = json.loads((directory / "meta.json").read_text())
        self.words: list[str] = (directory / "words.txt").read_text(encoding="utf-8").split("\n")
        self.vectors = np.load(directory / "vectors.npy", mmap_mode="r")
        if len(self.words) != self.vectors.shape[0]:
            raise ValueError(f"{directory}: {len(self.words)} words but {self.vectors.shape[0]} vectors; "
                             "delete the directory to rebuild it")

    @cached_property
    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    @property
    def content_hash(self) -> str:
        return self.meta["content_hash"]

    def cosine(self, a: str, b: str) -> float | None:
        """Cosine of two words' vectors (case-insensitive); None when either has no vector."""
        i, j = self.index.get(a.lower()), self.index.get(b.lower())
        if i is None or j is None:
            return None
        return float(np.dot(self.vectors[i], self.vectors[j]))

    @cached_property
    def _textattack_embedding(self) -> Any:
        from attack_workers.attack.offline import import_textattack

        import_textattack()
        from textattack.shared import WordEmbedding

        return WordEmbedding(np.asarray(self.vectors), dict(self.index), dict(enumerate(self.words)))

    def textattack_embedding(self) -> Any:
        """The vectors as a ``textattack.shared.WordEmbedding`` (for ``WordEmbeddingDistance``).

        One per lexicon: a worker builds an attack per checkpoint, and every attack shares the
        embedding and the cosines it has cached.
        """
        return self._textattack_embedding


def _hash_json(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def task_words(task: Any) -> set[str]:
    """Lower-case whole words of every text of every split of a ``vda.data.TaskData``."""
    words: set[str] = set()
    for split in task.splits.values():
        for example in split:
            for text in (example.text_a, example.text_b):
                if text:
                    words |= text_words(text)
    return words


@lru_cache(maxsize=1)
def _mr_words() -> frozenset[str]:
    from vda.config import DataConfig
    from vda.data import load_task

    return frozenset(task_words(load_task(DataConfig(dataset="mr"))))


def base_vocabulary(mlm_tokenizer: Any) -> frozenset[str]:
    """The words every lexicon has: the MLM's whole-word tokens (lower-cased) and the MR corpus's words."""
    return frozenset({t.lower() for t in whole_word_tokens(mlm_tokenizer)}) | _mr_words()


def vocabulary(mlm_tokenizer: Any, extra_words: Iterable[str] = ()) -> list[str]:
    """Sorted lower-case words: ``base_vocabulary`` plus a dataset's ``extra_words``."""
    return sorted(base_vocabulary(mlm_tokenizer) | set(extra_words))


def spec_for_task(task: Any, encoder: str = "default", mlm: str = "default", mlm_tokenizer: Any = None) -> LexiconSpec:
    """The lexicon an attack on ``task`` (a checkpoint's dataset) uses: its words join the vocabulary.

    Only the words the base vocabulary lacks enter the spec, so a dataset it covers (MR, the
    tests' review sentences) gets the default lexicon; load all splits, uncapped, so that every
    checkpoint of one dataset shares one lexicon whatever its caps.
    """
    if mlm_tokenizer is None:
        from transformers import AutoTokenizer

        from vda.mlm import resolve_mlm_path

        mlm_tokenizer = AutoTokenizer.from_pretrained(resolve_mlm_path(mlm))
    extra = task_words(task) - base_vocabulary(mlm_tokenizer)
    return LexiconSpec(encoder=encoder, mlm=mlm, extra_words=tuple(sorted(extra)))


def base_vectors(words: list[str], encoder: str) -> np.ndarray:
    """[N, d] unit single-word sentence embeddings of ``words`` (the encoder's mean pooling)."""
    from attack_workers.attack.sentence_encoder import load_sentence_model

    model = load_sentence_model(encoder)
    return model.encode(words, batch_size=256, normalize_embeddings=True, convert_to_numpy=True,
                        show_progress_bar=True).astype(np.float32)


def split_holdout(pairs: list[tuple[int, int]], seed: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(train, held out): a seeded random ``HOLDOUT_FRACTION`` of ``pairs`` is held out."""
    shuffled = list(pairs)
    random.Random(seed).shuffle(shuffled)
    cut = int(round(len(shuffled) * HOLDOUT_FRACTION))
    return sorted(shuffled[cut:]), sorted(shuffled[:cut])


Pairs = list[tuple[int, int]]


def relation_components(*relations: Pairs) -> dict[int, int]:
    """Word -> the smallest word of its connected component in the graph whose edges are all ``relations``' pairs."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for pairs in relations:
        for a, b in pairs:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return {word: find(word) for word in parent}


def split_components(synonyms: Pairs, antonyms: Pairs, seed: int,
                     fraction: float = HOLDOUT_FRACTION) -> tuple[Pairs, Pairs, Pairs, Pairs]:
    """(train synonyms, held-out synonyms, train antonyms, held-out antonyms): whole components held out.

    The components are those of one graph whose edges are both relations' pairs, so no word of a
    held-out pair is in any training pair of either kind: the held-out evaluation then measures
    words the constraints never moved. Components are taken in a seeded random order while the
    held-out pairs stay within ``fraction`` of all pairs; WordNet's graph has one giant component
    (94 % of the default vocabulary's pairs), which never fits, so the held-out pairs all come
    from the smaller clusters (rarer, more specific words: docs/attacks.md reports how that skews).
    """
    component = relation_components(synonyms, antonyms)
    sizes: dict[int, int] = {}
    for a, _ in (*synonyms, *antonyms):
        sizes[component[a]] = sizes.get(component[a], 0) + 1
    order = sorted(sizes)
    random.Random(seed).shuffle(order)
    budget, taken, held = fraction * (len(synonyms) + len(antonyms)), 0, set()
    for root in order:
        if taken + sizes[root] <= budget:
            held.add(root)
            taken += sizes[root]

    def part(pairs: Pairs, out: bool) -> Pairs:
        return sorted(p for p in pairs if (component[p[0]] in held) == out)

    return part(synonyms, False), part(synonyms, True), part(antonyms, False), part(antonyms, True)


def _write_pairs(path: Path, words: list[str], pairs: list[tuple[int, int]]) -> None:
    path.write_text("".join(f"{words[i]}\t{words[j]}\n" for i, j in pairs), encoding="utf-8")


def build_lexicon(spec: LexiconSpec, out: Path) -> None:
    """Build the lexicon of ``spec`` into the empty directory ``out`` (see the module docstring)."""
    import torch

    from attack_workers.lexicon.counterfit import counter_fit
    from transformers import AutoTokenizer

    from attack_workers.lexicon.relations import antonyms_of, relation_pairs, synonyms_of
    from vda.mlm import resolve_mlm_path

    words = vocabulary(AutoTokenizer.from_pretrained(resolve_mlm_path(spec.mlm)), spec.extra_words)
    vectors = _reusable_base_vectors(spec, words)
    if vectors is None:
        log.info("lexicon: %d words; embedding them with the sentence encoder", len(words))
        vectors = base_vectors(words, spec.encoder)
    synonyms, antonyms = relation_pairs(words, synonyms_of), relation_pairs(words, antonyms_of)
    synonyms = sorted(set(synonyms) - set(antonyms))
    if spec.holdout == "components":
        train_syn, held_syn, train_ant, held_ant = split_components(synonyms, antonyms, spec.seed)
    else:
        train_syn, held_syn = split_holdout(synonyms, spec.seed)
        train_ant, held_ant = split_holdout(antonyms, spec.seed + 1)
    log.info("lexicon: counter-fitting with %d synonym and %d antonym pairs (%d + %d held out)",
             len(train_syn), len(train_ant), len(held_syn), len(held_ant))
    fitted = counter_fit(torch.from_numpy(vectors), torch.tensor(train_syn).view(-1, 2),
                         torch.tensor(train_ant).view(-1, 2), spec.counterfit, spec.seed).numpy()
    np.save(out / "vectors.npy", fitted)
    np.save(out / "base_vectors.npy", vectors)
    (out / "words.txt").write_text("\n".join(words), encoding="utf-8")
    for name, pairs in (("synonyms_train", train_syn), ("synonyms_heldout", held_syn),
                        ("antonyms_train", train_ant), ("antonyms_heldout", held_ant)):
        _write_pairs(out / f"{name}.tsv", words, pairs)
    content = hashlib.sha256(fitted.tobytes() + "\n".join(words).encode()).hexdigest()[:16]
    meta = {"spec": _spec_dict(spec), "version": LEXICON_VERSION, "content_hash": content,
            "num_words": len(words), "dim": int(fitted.shape[1]),
            "pairs": {"synonyms": len(synonyms), "antonyms": len(antonyms),
                      "synonyms_heldout": len(held_syn), "antonyms_heldout": len(held_ant)}}
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def _reusable_base_vectors(spec: LexiconSpec, words: list[str]) -> np.ndarray | None:
    """The base vectors of the same words in the cache (the default build of an evaluation build's
    vocabulary): embedding them again would give the same vectors, in minutes."""
    from vda.assets import cache_dir

    sibling = cache_dir() / "word-vectors" / recipe_hash(dataclasses.replace(spec, holdout="random"))
    try:
        if (sibling / "words.txt").read_text(encoding="utf-8").split("\n") == words:
            return np.load(sibling / "base_vectors.npy")
    except OSError:
        pass
    return None


def _spec_dict(spec: LexiconSpec) -> dict[str, Any]:
    fields = dataclasses.asdict(spec)
    fields["extra_words"] = {"count": len(spec.extra_words), "hash": _hash_json(list(spec.extra_words))}
    return fields


def recipe_hash(spec: LexiconSpec) -> str:
    """Hash of every input of the build: a changed input gets a new directory."""
    from attack_workers.attack.identity import directory_hash, resolve_encoder_path
    from attack_workers.lexicon.resources import resources_hash
    from vda.assets import mr_corpus_path
    from vda.mlm import resolve_mlm_path

    corpus = hashlib.sha256(mr_corpus_path().read_bytes()).hexdigest()[:16]
    vocab = hashlib.sha256((Path(resolve_mlm_path(spec.mlm)) / "vocab.txt").read_bytes()).hexdigest()[:16]
    # Contents, not paths: the same MLM vocabulary and encoder reached through another path (a test's
    # temporary copy) reuse the lexicon.
    return _hash_json({"seed": spec.seed, "counterfit": dataclasses.asdict(spec.counterfit),
                       "version": LEXICON_VERSION, "corpus": corpus, "vocab": vocab,
                       "encoder": directory_hash(resolve_encoder_path(spec.encoder)), "resources": resources_hash(),
                       "holdout": spec.holdout, "extra_words": _spec_dict(spec)["extra_words"]["hash"]})


def load_lexicon(spec: LexiconSpec = LexiconSpec()) -> Lexicon:
    """The lexicon of ``spec`` from the cache, built first when absent (minutes, once)."""
    from vda.assets import cache_dir, staged

    final = cache_dir() / "word-vectors" / recipe_hash(spec)
    if not (final / "meta.json").is_file():
        with staged(final, directory=True) as tmp:
            build_lexicon(spec, tmp)
    return Lexicon(final)


# A small hand-written check, independent of WordNet's lists: pairs a movie review can contain.
REVIEW_SYNONYMS = (
    ("movie", "film"), ("terrible", "awful"), ("funny", "hilarious"), ("boring", "dull"), ("great", "excellent"),
    ("bad", "poor"), ("beautiful", "gorgeous"), ("scary", "frightening"), ("smart", "clever"), ("dumb", "stupid"),
    ("enjoyable", "entertaining"), ("actor", "performer"), ("plot", "storyline"), ("wonderful", "marvelous"),
    ("tedious", "boring"), ("brilliant", "superb"), ("mess", "shambles"), ("sad", "depressing"),
    ("amazing", "astonishing"), ("director", "filmmaker"),
)
REVIEW_OPPOSITES = (
    ("good", "bad"), ("love", "hate"), ("best", "worst"), ("boring", "exciting"), ("funny", "unfunny"),
    ("smart", "dumb"), ("terrific", "terrible"), ("boring", "compelling"), ("entertaining", "boring"),
    ("great", "awful"), ("brilliant", "stupid"), ("success", "failure"), ("beautiful", "ugly"),
    ("interesting", "boring"), ("wonderful", "awful"), ("strong", "weak"), ("fresh", "stale"),
    ("enjoyable", "painful"), ("dull", "pleasant"), ("masterpiece", "disaster"),
)


def _pairs_file(lexicon: Lexicon, name: str) -> list[tuple[str, str]]:
    lines = (lexicon.directory / f"{name}.tsv").read_text(encoding="utf-8").splitlines()
    return [tuple(line.split("\t")) for line in lines if line]  # type: ignore[misc]


def _cosines(vectors: np.ndarray, index: dict[str, int], pairs: list[tuple[str, str]]) -> np.ndarray:
    known = [(index[a], index[b]) for a, b in pairs if a in index and b in index]
    rows = np.asarray(known, dtype=np.int64).reshape(-1, 2)
    return np.einsum("ij,ij->i", vectors[rows[:, 0]], vectors[rows[:, 1]])


def _random_pairs(words: list[str], count: int = 20000, seed: int = 0) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    return [(words[i], words[j]) for i, j in rng.integers(0, len(words), size=(count, 2)) if i != j]


def evaluate_lexicon(lexicon: Lexicon, thresholds: tuple[float, ...]) -> list[dict[str, Any]]:
    """Per threshold, base vs counter-fitted: held-out antonyms rejected, held-out synonyms accepted,
    the hand-written review pairs (opposites rejected, synonyms accepted), and random word pairs
    rejected (counter-fitting must not merge unrelated words: what the attack would then accept)."""
    base = np.load(lexicon.directory / "base_vectors.npy", mmap_mode="r")
    antonyms = _pairs_file(lexicon, "antonyms_heldout")
    # Most WordNet antonym pairs are far apart already; the ones a filter must catch are those the
    # base vectors put close together.
    close = [p for p, c in zip(antonyms, _cosines(np.asarray(base), lexicon.index, antonyms)) if c >= CLOSE_ANTONYMS]
    sets = {"heldout antonyms": antonyms, "heldout close antonyms": close,
            "heldout synonyms": _pairs_file(lexicon, "synonyms_heldout"),
            "review opposites": list(REVIEW_OPPOSITES), "review synonyms": list(REVIEW_SYNONYMS),
            "random pairs": _random_pairs(lexicon.words)}
    rows = []
    for vectors_name, vectors in (("base", base), ("counter-fitted", lexicon.vectors)):
        cosines = {name: _cosines(np.asarray(vectors), lexicon.index, pairs) for name, pairs in sets.items()}
        for threshold in thresholds:
            row: dict[str, Any] = {"vectors": vectors_name, "threshold": threshold}
            for name, values in cosines.items():
                rejected = "antonyms" in name or name.endswith(("opposites", "random pairs"))
                share = (values < threshold).mean() if rejected else (values >= threshold).mean()
                row[f"{name} {'rejected' if rejected else 'accepted'}"] = float(share)
                row[f"{name} n"] = int(values.size)
            rows.append(row)
    return rows


SPLIT_THRESHOLDS = (0.5, 0.7, 0.85)


def heldout_distributions(lexicon: Lexicon, thresholds: tuple[float, ...] = SPLIT_THRESHOLDS) -> list[dict[str, Any]]:
    """The held-out pairs' cosine distributions, base and counter-fitted: n, quartiles and the share
    at or above each threshold (a synonym should be above, an antonym below), per kind of pair."""
    base = np.asarray(np.load(lexicon.directory / "base_vectors.npy", mmap_mode="r"))
    antonyms = _pairs_file(lexicon, "antonyms_heldout")
    close = [p for p, c in zip(antonyms, _cosines(base, lexicon.index, antonyms)) if c >= CLOSE_ANTONYMS]
    sets = {"synonyms": _pairs_file(lexicon, "synonyms_heldout"), "antonyms": antonyms, "close antonyms": close}
    rows = []
    for name, pairs in sets.items():
        for vectors_name, vectors in (("base", base), ("counter-fitted", np.asarray(lexicon.vectors))):
            values = _cosines(vectors, lexicon.index, pairs)
            row: dict[str, Any] = {"split": lexicon.meta["spec"].get("holdout", "random"), "held out": name,
                                   "vectors": vectors_name, "n": int(values.size)}
            for q in (25, 50, 75):
                row[f"p{q}"] = float(np.percentile(values, q)) if values.size else float("nan")
            for t in thresholds:
                row[f">= {t}"] = float((values >= t).mean()) if values.size else float("nan")
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python -m attack_workers.lexicon build|report``: build the default lexicon; evaluate it."""
    import argparse

    import pandas as pd

    parser = argparse.ArgumentParser(prog="python -m attack_workers.lexicon", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["build", "report"],
                        help="build: make sure the default lexicon is in the cache (make setup runs it); "
                             "report: its held-out and hand-written evaluation per threshold, and the held-out "
                             "cosines of both splits side by side (random pairs: the default build; whole "
                             "components: an evaluation build, made on first use, minutes)")
    parser.add_argument("--thresholds", default="0.4,0.5,0.6,0.7,0.8", help="comma-separated cosines to evaluate")
    parser.add_argument("--pairs", nargs="*", default=(), metavar="A,B", help="also print the cosine of these pairs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    lexicon = load_lexicon()
    print(f"{lexicon.directory}: {lexicon.meta['num_words']} words, pairs {json.dumps(lexicon.meta['pairs'])}")
    if args.command == "report":
        table = pd.DataFrame(evaluate_lexicon(lexicon, tuple(float(t) for t in args.thresholds.split(","))))
        print(table[[c for c in table.columns if not c.endswith(" n")]].to_markdown(index=False, floatfmt=".3f"))
        print("pairs with vectors:", {c[:-2]: int(table[c].iloc[0]) for c in table.columns if c.endswith(" n")})
        components = load_lexicon(dataclasses.replace(LexiconSpec(), holdout="components"))
        print(f"\nheld-out cosines, random pairs (the default build) vs whole components ({components.directory}: "
              f"pairs {json.dumps(components.meta['pairs'])}):")
        splits = pd.DataFrame(heldout_distributions(lexicon) + heldout_distributions(components))
        splits = splits.sort_values(["held out", "vectors", "split"], kind="stable")
        print(splits.to_markdown(index=False, floatfmt=".3f"))
        for pair in args.pairs:
            a, b = pair.split(",")
            print(f"cos({a}, {b}) = {lexicon.cosine(a, b)}")
    return 0

