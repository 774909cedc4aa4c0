"""Finding and vetting the checkpoints to attack: globs, directories, sweep experiment directories.

A checkpoint is a directory with ``manifest.json`` and ``model/`` (``vda.checkpoint``). Given a
directory that is not one, every checkpoint below it is used (a Ray Tune experiment directory
holds them under its trial directories). Hidden directories are skipped: ``save_checkpoint``
writes into ``.<name>.*`` temp directories before renaming them into place.

Problems are sorted by who can fix them: a path that does not exist or holds no checkpoint at
all is a usage error (``EvaluationError``, nothing runs); a damaged or partial checkpoint among
good ones is skipped and recorded (``CheckpointProblem``), and the others are evaluated.
"""

from __future__ import annotations

import glob
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attack_workers.results.store import flatten
from vda.checkpoint import (
    MANIFEST_NAME,
    MODEL_DIR,
    CheckpointError,
    Manifest,
    check_model_files,
    checkpoint_hash,
    load_manifest,
)

_GLOB_CHARS = set("*?[")


class EvaluationError(ValueError):
    """The evaluation cannot start; the message says what to change.

    ``problems``: the checkpoints that were skipped on the way (every one given, when none is
    usable), so the caller can still record them in the store.
    """

    def __init__(self, message: str, problems: Sequence[CheckpointProblem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


@dataclass(frozen=True)
class CheckpointProblem:
    path: str
    error: str


@dataclass(frozen=True)
class CheckpointInfo:
    path: str
    checkpoint_hash: str
    manifest: Manifest

    def record(self) -> dict[str, Any]:
        """The store's ``checkpoints`` row: identity plus the manifest flattened (``config.vda.sigma``...)."""
        m = self.manifest
        return {
            "checkpoint_hash": self.checkpoint_hash, "path": self.path, "run_id": m.run_id, "epoch": m.epoch,
            "step": m.step, "substitution_mode": m.substitution_mode, "trained_on": m.dataset.get("name", ""),
            "git_commit": m.git_commit, "created": m.created, "recorded_at": time.time(),
            **flatten(m.config, "config."), **flatten(m.metrics, "metrics."), **_training_identity(Path(self.path)),
        }


def _training_identity(path: Path) -> dict[str, Any]:
    """``training_key`` and ``training_code`` from the checkpoint's ``training.json`` (written by a sweep
    trial, ``tune.trainable``), so a store can be searched by training key; nothing when it has none."""
    import json

    marker = path / "training.json"
    if not marker.is_file():
        return {}
    try:
        found = json.loads(marker.read_text())
        return {"training_key": str(found["training_key"]), "training_code": int(found["training_code"])}
    except (ValueError, KeyError, TypeError):
        return {}


def _looks_like_checkpoint(path: Path) -> bool:
    return (path / MANIFEST_NAME).exists() or (path / MODEL_DIR).is_dir()


def _expand(spec: str) -> list[Path]:
    if _GLOB_CHARS & set(spec):
        matches = sorted(Path(p) for p in glob.glob(str(Path(spec).expanduser())))
        if not matches:
            raise EvaluationError(f"{spec}: the pattern matches nothing")
        return matches
    path = Path(spec).expanduser()
    if not path.exists():
        raise EvaluationError(f"{spec}: no such file or directory")
    return [path]


def _checkpoints_below(root: Path) -> list[Path]:
    found = {m.parent for m in root.rglob(MANIFEST_NAME)}
    found |= {c.parent.parent for c in root.rglob(f"{MODEL_DIR}/config.json")}  # partial: weights, no manifest
    return sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(root).parts))


def find_checkpoints(specs: Sequence[str]) -> list[Path]:
    """Checkpoint directories named by ``specs`` (paths, globs, or directories holding checkpoints)."""
    if not specs:
        raise EvaluationError("no checkpoints given; pass checkpoint directories, a glob, or a sweep's "
                              "experiment directory")
    found: list[Path] = []
    for spec in specs:
        for path in _expand(spec):
            if _looks_like_checkpoint(path):
                found.append(path)
            elif path.is_dir() and (below := _checkpoints_below(path)):
                found.extend(below)
            else:
                raise EvaluationError(f"{path}: not a checkpoint and holds none; a checkpoint is a directory with "
                                      f"{MANIFEST_NAME} and {MODEL_DIR}/ (written by vda.train)")
    return list(dict.fromkeys(p.resolve() for p in found))


def vet_checkpoint(path: Path) -> CheckpointInfo | CheckpointProblem:
    """Manifest readable, weights present and readable: a ``CheckpointInfo``; else the problem."""
    try:
        manifest = load_manifest(path)
        check_model_files(path)
        return CheckpointInfo(str(path), checkpoint_hash(path), manifest)
    except CheckpointError as exc:
        return CheckpointProblem(str(path), str(exc))
