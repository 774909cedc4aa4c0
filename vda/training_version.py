"""The training-code version and the training key: what a sweep looks results up by.

Why: a sweep reuses a configuration's checkpoint and rows whenever its training key matches
(``tune.study``), instead of training it again. The key hashes the resolved ``TrainConfig`` fields
that change the weights, but what a config trains also depends on code (the VDA objective, the
substitution, the training loop, the data split): changing that code must change every key, or
rows of the old code would be reused silently. So the key also carries ``TRAINING_CODE_VERSION``.

A version is only as good as its bumps. ``TRAINING_SOURCES`` names the modules that decide what a
config trains; ``training_code.json`` (next to this file) records the version and a fingerprint of
their source, and ``tests/vda/test_training_version.py`` fails when the sources changed and the
record did not. After changing one of them::

    python -m vda.training_version --bump             # the change alters what some config trains
    python -m vda.training_version --same-behaviour   # it does not (a comment, a docstring, a new option
                                                      # whose default trains as before)

The version lives in the JSON record (not in code) so that one command updates both. Sources are
read from their files, not imported: checking costs no torch import. Whole modules are
fingerprinted (unlike ``attack_workers.attack.attack_version``, which can name single rules):
training code has no part that provably leaves the weights alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TRAINING_SOURCES: tuple[str, ...] = (
    "vda.config",  # defaults and their resolution (MODE_SIGMA...), recorded resolved in every key
    "vda.data",  # loading, splitting, subsampling, tokenising
    "vda.batching",  # batches and their order
    "vda.train",  # the loop: optimiser, schedule, clipping, selection, seeds
    "vda.objective",  # the VDA regulariser
    "vda.losses",
    "vda.augment",  # virtual samples
    "vda.substitution",  # substitution distributions and their noise
    "vda.candidates",  # sharp mode's candidate tables
    "vda.mlm",  # which masked LM 'default' means and how it is loaded
    "vda.strategies.plain", "vda.strategies.freelb", "vda.strategies.smart", "vda.strategies.smix",
    "vda.strategies",
)
RECORD = Path(__file__).with_name("training_code.json")
ROOT = Path(__file__).resolve().parents[1]  # the directory holding the vda package
COMMAND = "python -m vda.training_version"
# TrainConfig fields (dotted) that provably do not change the weights: threads, evaluation batch size,
# which epoch directories are kept, and where sharp mode's candidate table is held (same values either way).
NON_TRAINING_KEYS = frozenset({"num_threads", "eval_batch_size", "keep_epoch_checkpoints", "vda.cache_mb",
                               "vda.shared_candidates"})


def _read_record(record: Path | None = None) -> dict[str, Any]:
    return json.loads((record or RECORD).read_text())


def training_code_version(record: Path | None = None) -> int:
    """The recorded training-code version (part of every training key)."""
    return int(_read_record(record)["version"])


def source_text(module: str) -> str:
    """The source text of ``module`` (a package: its ``__init__.py``), found below the repository root
    without importing anything (``find_spec`` of a submodule would import its package, torch included)."""
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise LookupError(f"TRAINING_SOURCES entry {module!r}: no such module; update "
                      "vda.training_version.TRAINING_SOURCES")


def source_fingerprint(sources: Sequence[str] = TRAINING_SOURCES) -> str:
    """SHA-256 over the sources' texts, in ``sources``' order."""
    h = hashlib.sha256()
    for module in sources:
        h.update(source_text(module).encode())
        h.update(b"\0")
    return h.hexdigest()


def check(sources: Sequence[str] = TRAINING_SOURCES, record: Path | None = None) -> str | None:
    """Why ``record`` (default: ``RECORD``) does not match the training sources, or None when it does."""
    record = record or RECORD
    recorded = _read_record(record)
    if source_fingerprint(sources) == recorded["fingerprint"]:
        return None
    return ("the code that decides what a config trains changed (vda.training_version.TRAINING_SOURCES) and "
            f"{record.name} was not updated: run `{COMMAND} --bump` so that no sweep reuses checkpoints of the old "
            f"code, or `{COMMAND} --same-behaviour` if every config still trains the same weights (a comment, a "
            "docstring, a new option whose default trains as before)")


def update(bump: bool, sources: Sequence[str] = TRAINING_SOURCES, record: Path | None = None) -> dict[str, Any]:
    """Record the sources' fingerprint in ``record`` (default: ``RECORD``), the version raised by one when ``bump``."""
    record = record or RECORD
    recorded = _read_record(record)
    new = {"version": int(recorded["version"]) + (1 if bump else 0), "fingerprint": source_fingerprint(sources)}
    record.write_text(json.dumps(new, indent=2) + "\n")
    return new


def training_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    """The dotted fields of a resolved ``TrainConfig.to_dict()`` (or a manifest's ``config``) that change
    the weights: all but ``NON_TRAINING_KEYS``; lists and tuples compare alike."""
    from vda.dotted import flatten

    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in flatten(dict(config)).items() if key not in NON_TRAINING_KEYS}


def training_key(config: Mapping[str, Any], version: int) -> str:
    """Hash of ``training_fields(config)`` and the training-code ``version``: equal keys, equal training."""
    payload = json.dumps({"config": training_fields(config), "training_code": version}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description="check or record the training-code version")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--bump", action="store_true", help=f"raise the version by one and record the fingerprint "
                                                           f"in {RECORD.name}")
    group.add_argument("--same-behaviour", action="store_true",
                       help="record the fingerprint under the same version: no config trains differently")
    args = parser.parse_args(argv)
    if args.bump or args.same_behaviour:
        print(json.dumps(update(bump=args.bump)))
        return 0
    problem = check()
    print(problem or f"training code version {training_code_version()}: {RECORD.name} is up to date")
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main())
