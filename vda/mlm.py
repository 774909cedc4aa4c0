"""Loading the masked language model that scores substitutes, and checking it fits the classifier.

VDA mixes the MLM's token embeddings with weights over the MLM's vocabulary and feeds the result
to the classifier, so both must use the same tokenizer vocabulary: ``check_same_vocab`` refuses a
mismatch instead of producing silently meaningless virtual tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


class VocabularyMismatchError(ValueError):
    """The MLM and the classifier do not share one vocabulary."""


def resolve_model_path(spec: str) -> str:
    """Map the config value 'default' to the packaged backbone; anything else is a path or hub name."""
    if spec == "default":
        from vda.assets import default_backbone_path

        return str(default_backbone_path())
    return spec


def resolve_mlm_path(spec: str) -> str:
    """Map 'default' to the packaged encoder + this repo's trained MLM head (materialised in the cache)."""
    if spec == "default":
        from vda.assets import default_mlm_path

        return str(default_mlm_path())
    return spec


def load_mlm(spec: str = "default", device: str | torch.device = "cpu") -> tuple[Any, Any]:
    """Load (masked LM, tokenizer), frozen and in eval mode: VDA never trains the MLM."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    path = resolve_mlm_path(spec)
    local = Path(path).is_dir()
    model = AutoModelForMaskedLM.from_pretrained(path, use_safetensors=True if local else None)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model.requires_grad_(False)
    return model.to(device).eval(), tokenizer


def check_same_vocab(classifier_tokenizer: Any, mlm_tokenizer: Any, mlm_model: Any) -> None:
    """Raise VocabularyMismatchError unless both tokenizers map every token to the same id."""
    a, b = classifier_tokenizer.get_vocab(), mlm_tokenizer.get_vocab()
    if a != b:
        only_a = len(set(a) - set(b))
        only_b = len(set(b) - set(a))
        moved = sum(1 for t in set(a) & set(b) if a[t] != b[t])
        raise VocabularyMismatchError(
            f"the MLM's vocabulary ({len(b)} tokens) differs from the classifier's ({len(a)} tokens): "
            f"{only_a} only in the classifier, {only_b} only in the MLM, {moved} with different ids. "
            "Use an MLM from the same model family/checkpoint as the classifier (set `mlm` to match `model`).")
    rows = mlm_model.get_input_embeddings().weight.shape[0]
    if rows < len(a):
        raise VocabularyMismatchError(f"the MLM's embedding matrix has {rows} rows but the vocabulary has "
                                      f"{len(a)} tokens; the MLM checkpoint does not match its tokenizer")
