"""Checkpoint directories: the contract between training, the sweep and the attack pool.

Layout of one checkpoint directory::

    <dir>/model/          save_pretrained() output (safetensors) + tokenizer files: plain
                          transformers loads it with from_pretrained(<dir>/model)
    <dir>/manifest.json   Manifest: full config, substitution mode, data hashes, labels, epoch,
                          metrics, package versions

Loading uses safetensors and JSON only: nothing is unpickled. Damaged checkpoints raise
``CheckpointError`` naming the file and what is wrong.

Checkpoints are written world-readable (directories 0755, files 0644, less what the umask
removes), because attack workers on shared storage may run as another user; set a stricter
umask (e.g. 027) to keep them private.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

MANIFEST_NAME = "manifest.json"
MODEL_DIR = "model"
FORMAT_VERSION = 1
DIR_MODE, FILE_MODE = 0o755, 0o644  # before the umask; see the module docstring
# The manifest fields every consumer relies on, with their JSON types (bool is an int in Python: excluded below).
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "run_id": str, "config": dict, "dataset": dict, "epoch": int, "step": int, "metrics": dict,
    "substitution_mode": str, "versions": dict, "git_commit": str, "created": (int, float), "format_version": int,
}
_VERSIONED_PACKAGES = ("torch", "transformers", "vda-robust", "datasets", "ray", "textattack")


class CheckpointError(ValueError):
    """A path is not a usable checkpoint; the message says which file and why."""


@dataclass(frozen=True)
class Manifest:
    run_id: str
    config: dict[str, Any]  # TrainConfig.to_dict(): the whole resolved config
    dataset: dict[str, Any]  # TaskData.describe(): name, label_names, text_columns, split hashes
    epoch: int
    step: int
    metrics: dict[str, float]
    substitution_mode: str  # config.vda.mode, duplicated here because every consumer filters on it
    versions: dict[str, str] = field(default_factory=dict)
    git_commit: str = ""
    created: float = 0.0
    format_version: int = FORMAT_VERSION

    @property
    def label_names(self) -> list[str]:
        return list(self.dataset["label_names"])


def package_versions() -> dict[str, str]:
    out = {}
    for name in _VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str:
    """The repository commit this code runs from, or '' outside a git checkout."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                                text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def save_checkpoint(directory: str | Path, model: Any, tokenizer: Any, manifest: Manifest,
                    write_extra: Callable[[Path], None] | None = None) -> Path:
    """Write model, tokenizer and manifest (and ``write_extra(tmp_dir)``'s files) atomically.

    Everything goes to a temporary sibling directory first and is renamed into place, so a reader
    never sees a half-written checkpoint and a crash leaves the previous one intact.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        model.save_pretrained(tmp / MODEL_DIR, safe_serialization=True)
        tokenizer.save_pretrained(tmp / MODEL_DIR)
        stamped = dataclasses.replace(manifest, created=manifest.created or time.time())
        (tmp / MANIFEST_NAME).write_text(json.dumps(dataclasses.asdict(stamped), indent=2, sort_keys=True))
        if write_extra is not None:
            write_extra(tmp)
        _make_readable(tmp)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            directory.rename(old)
            tmp.rename(directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _make_readable(root: Path) -> None:
    """Give ``root`` and everything below it DIR_MODE / FILE_MODE, less the umask.

    mkdtemp creates 0700 and some writers (safetensors) 0600, which would lock out attack workers
    running as another user on shared storage.
    """
    allowed = ~_umask() & 0o777
    root.chmod(DIR_MODE & allowed)
    for path in root.rglob("*"):
        if not path.is_symlink():
            path.chmod((DIR_MODE if path.is_dir() else FILE_MODE) & allowed)


def _umask() -> int:
    """The process umask, read without os.umask(), which can only read it by changing it for every thread."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022  # no /proc (not Linux): the common default


def load_manifest(directory: str | Path) -> Manifest:
    """Read and check ``manifest.json``; raise CheckpointError when it is missing or malformed."""
    directory = Path(directory)
    path = directory / MANIFEST_NAME
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: not a directory; a checkpoint is a directory with {MANIFEST_NAME} "
                              f"and {MODEL_DIR}/")
    if not path.is_file():
        raise CheckpointError(f"{directory}: no {MANIFEST_NAME}; this is not a VDA checkpoint (or it was "
                              "interrupted while being written)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt manifest ({exc}); re-create the checkpoint") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror}); check the file's permissions") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: corrupt manifest (a JSON {type(raw).__name__}, not an object); "
                              "re-create the checkpoint")
    names = {f.name for f in dataclasses.fields(Manifest)}
    missing = sorted(n for n in names - set(raw) if n not in ("versions", "git_commit", "created", "format_version"))
    if missing:
        raise CheckpointError(f"{path}: manifest lacks {missing}; re-create the checkpoint")
    _check_field_types(raw, path)
    if raw.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {raw['format_version']} is newer than this code "
                              f"understands ({FORMAT_VERSION}); upgrade the vda package")
    return Manifest(**{k: v for k, v in raw.items() if k in names})


def _check_field_types(raw: dict[str, Any], path: Path) -> None:
    """Wrong JSON types (``"format_version": "1"``, ``null``) would otherwise surface as a TypeError in a consumer."""
    wrong = [f"{key}={raw[key]!r}" for key, kind in _FIELD_TYPES.items()
             if key in raw and (isinstance(raw[key], bool) or not isinstance(raw[key], kind))]
    labels = raw.get("dataset", {}).get("label_names") if isinstance(raw.get("dataset"), dict) else None
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        wrong.append(f"dataset.label_names={labels!r}")
    if wrong:
        raise CheckpointError(f"{path}: manifest has values of the wrong type ({', '.join(wrong)}); it was edited "
                              "or damaged, re-create the checkpoint")


def check_model_files(directory: str | Path) -> Path:
    """Verify that ``<dir>/model`` has a config and readable safetensors weights; return its path."""
    model_dir = Path(directory) / MODEL_DIR
    if not (model_dir / "config.json").is_file():
        raise CheckpointError(f"{model_dir}: no config.json; the checkpoint is incomplete")
    weights = sorted(model_dir.glob("*.safetensors"))
    if not weights:
        raise CheckpointError(f"{model_dir}: no *.safetensors weights; the checkpoint is incomplete")
    from safetensors import safe_open

    for w in weights:
        try:
            with safe_open(str(w), framework="pt") as f:
                f.keys()
        except Exception as exc:  # safetensors raises several types for a damaged header
            raise CheckpointError(f"{w}: unreadable weights ({exc}); the checkpoint is corrupt") from None
    return model_dir


def load_checkpoint(directory: str | Path, device: str = "cpu") -> tuple[Any, Any, Manifest]:
    """Load (model, tokenizer, manifest) from a checkpoint directory, in eval mode on ``device``."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    manifest = load_manifest(directory)
    model_dir = check_model_files(directory)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), use_safetensors=True)
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{model_dir}: cannot be loaded ({exc}); the checkpoint is corrupt") from None
    if model.config.num_labels != len(manifest.label_names):
        raise CheckpointError(f"{directory}: model has {model.config.num_labels} labels but the manifest lists "
                              f"{manifest.label_names}; the checkpoint is inconsistent")
    return model.to(device).eval(), tokenizer, manifest


def checkpoint_hash(directory: str | Path) -> str:
    """Content hash of weights + manifest: identical bytes give the same key, wherever they are stored."""
    directory = Path(directory)
    h = hashlib.sha256()
    files = [directory / MANIFEST_NAME, *sorted((directory / MODEL_DIR).glob("*.safetensors"))]
    for path in files:
        h.update(path.name.encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]
