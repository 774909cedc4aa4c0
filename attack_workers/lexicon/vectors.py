"""The attack's word lexicon: counter-fitted word vectors, built offline, cached by content.

Why: the VDA authors' BERT-Attack script keeps a substitute only when the cosine between the
original word and the substitute, in counter-fitted word vectors, is at least 0.7
(``if substitute in w2i and tgt_word in w2i: if cos < 0.7: continue``). Without that filter the
attack swaps "good" for "bad" and scores every model near zero. Those vectors are not reachable
offline, so they are rebuilt here by the same method on what the machine has:

- vocabulary: every lower-case whole-word token of the MLM (what single-token candidates can be)
  plus every word of the MR corpus (what a review can contain); a word outside it has no vector,
  and a pair with such a word passes the filter as in the script (the audit counts these);
- base vectors: single-word sentence embeddings of the packaged all-MiniLM-L6-v2 encoder
  (movie/film 0.84, terrible/awful 0.85, but good/bad 0.59);
- constraints: WordNet 3.0 synonyms and antonyms (``attack_workers.lexicon.relations``), of which a
  seeded random 20 % of each kind is held out to measure how the filter generalises;
- counter-fitting (``attack_workers.lexicon.counterfit``), seeded. Not bit-reproducible: two builds of
  one recipe on the same machine gave different content hashes (threaded CPU reductions), which
  is why rows are keyed by the content hash, and why the nodes of a cluster must share one cache
  (``VDA_CACHE_DIR`` on shared storage) so that every worker uses the vectors the planner keyed.

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
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from attack_workers.lexicon.counterfit import CounterFitConfig

log = logging.getLogger("attack_workers")

LEXICON_VERSION = 1  # bump when the build changes in a way the recipe does not capture
HOLDOUT_FRACTION = 0.2
CLOSE_ANTONYMS = 0.6  # base cosine from which an antonym pair counts as "close" in the evaluation
_WORD = re.compile(r"[a-z]+(?:['-][a-z]+)*")


@dataclass(frozen=True)
class LexiconSpec:
    """Everything that decides the built vectors; its hash names the cache directory."""

    encoder: str = "default"  # sentence-transformers directory for the base vectors
    mlm: str = "default"  # the MLM whose whole-word tokens join the vocabulary
    seed: int = 0
    counterfit: CounterFitConfig = CounterFitConfig()


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


def vocabulary(mlm_tokenizer: Any) -> list[str]:
    """Sorted lower-case words: the MLM's whole-word tokens plus every word of the MR corpus."""
    from vda.config import DataConfig
    from vda.data import load_task

    words = {t for t in mlm_tokenizer.get_vocab() if _WORD.fullmatch(t)}
    task = load_task(DataConfig(dataset="mr"))
    for split in task.splits.values():
        for example in split:
            words.update(_WORD.findall(example.text_a.lower()))
    return sorted(words)


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


def _write_pairs(path: Path, words: list[str], pairs: list[tuple[int, int]]) -> None:
    path.write_text("".join(f"{words[i]}\t{words[j]}\n" for i, j in pairs), encoding="utf-8")


def build_lexicon(spec: LexiconSpec, out: Path) -> None:
    """Build the lexicon of ``spec`` into the empty directory ``out`` (see the module docstring)."""
    import torch

    from attack_workers.lexicon.counterfit import counter_fit
    from transformers import AutoTokenizer

    from attack_workers.lexicon.relations import antonyms_of, relation_pairs, synonyms_of
    from vda.mlm import resolve_mlm_path

    words = vocabulary(AutoTokenizer.from_pretrained(resolve_mlm_path(spec.mlm)))
    log.info("lexicon: %d words; embedding them with the sentence encoder", len(words))
    vectors = base_vectors(words, spec.encoder)
    synonyms, antonyms = relation_pairs(words, synonyms_of), relation_pairs(words, antonyms_of)
    synonyms = sorted(set(synonyms) - set(antonyms))
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


def _spec_dict(spec: LexiconSpec) -> dict[str, Any]:
    return dataclasses.asdict(spec)


def recipe_hash(spec: LexiconSpec) -> str:
    """Hash of every input of the build: a changed input gets a new directory."""
    from attack_workers.runtime.identity import directory_hash, resolve_encoder_path
    from attack_workers.lexicon.resources import resources_hash
    from vda.assets import mr_corpus_path
    from vda.mlm import resolve_mlm_path

    corpus = hashlib.sha256(mr_corpus_path().read_bytes()).hexdigest()[:16]
    vocab = hashlib.sha256((Path(resolve_mlm_path(spec.mlm)) / "vocab.txt").read_bytes()).hexdigest()[:16]
    # Contents, not paths: the same MLM vocabulary and encoder reached through another path (a test's
    # temporary copy) reuse the lexicon.
    return _hash_json({"seed": spec.seed, "counterfit": dataclasses.asdict(spec.counterfit),
                       "version": LEXICON_VERSION, "corpus": corpus, "vocab": vocab,
                       "encoder": directory_hash(resolve_encoder_path(spec.encoder)), "resources": resources_hash()})


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


def main(argv: list[str] | None = None) -> int:
    """``python -m attack_workers.lexicon build|report``: build the default lexicon; evaluate it."""
    import argparse

    import pandas as pd

    parser = argparse.ArgumentParser(prog="python -m attack_workers.lexicon", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["build", "report"],
                        help="build: make sure the default lexicon is in the cache (make setup runs it); "
                             "report: its held-out and hand-written evaluation per threshold")
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
        for pair in args.pairs:
            a, b = pair.split(",")
            print(f"cos({a}, {b}) = {lexicon.cosine(a, b)}")
    return 0

