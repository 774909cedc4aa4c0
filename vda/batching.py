"""Tokenising splits once and serving dynamically padded batches.

Inputs longer than ``max_length`` are truncated and counted; the count is logged as a warning
(never silent). Batches are padded to their longest member only, which matters a lot on CPU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch

from vda.data import Example

log = logging.getLogger(__name__)


@dataclass
class EncodedSplit:
    features: list[dict[str, list[int]]]  # per example: input_ids (+ token_type_ids), unpadded
    labels: list[int]
    truncated: int

    def __len__(self) -> int:
        return len(self.labels)


def encode_examples(tokenizer: Any, examples: Sequence[Example], max_length: int, name: str = "") -> EncodedSplit:
    """Tokenise (pairs as two segments), truncating to ``max_length`` with a counted warning."""
    a = [e.text_a for e in examples]
    b = [e.text_b for e in examples] if examples and examples[0].text_b is not None else None
    full = tokenizer(a, b, truncation=False, add_special_tokens=True)["input_ids"]
    truncated = sum(len(ids) > max_length for ids in full)
    if truncated:
        log.warning("%s: %d of %d inputs are longer than data.max_length=%d tokens and were truncated "
                    "(longest: %d); raise data.max_length to keep them whole", name or "data", truncated,
                    len(examples), max_length, max(len(ids) for ids in full))
    enc = tokenizer(a, b, truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "token_type_ids") if k in enc]
    features = [{k: enc[k][i] for k in keys} for i in range(len(examples))]
    return EncodedSplit(features, [e.label for e in examples], truncated)


def collate(tokenizer: Any, split: EncodedSplit, rows: Sequence[int], device: torch.device) -> dict[str, torch.Tensor]:
    """Pad the selected rows to their longest member and move them to ``device``."""
    feats = [split.features[i] for i in rows]
    width = max(len(f["input_ids"]) for f in feats)
    pad_values = {"input_ids": tokenizer.pad_token_id, "token_type_ids": 0}
    batch = {key: torch.tensor([f[key] + [pad] * (width - len(f[key])) for f in feats])
             for key, pad in pad_values.items() if key in feats[0]}
    batch["attention_mask"] = torch.tensor([[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"]))
                                            for f in feats])
    batch["labels"] = torch.tensor([split.labels[i] for i in rows])
    batch = {k: v.to(device) for k, v in batch.items()}
    # a stable id per example, the VDA candidate cache's key; stays on the CPU, where the cache reads it
    batch["example_index"] = torch.tensor(list(rows))
    return batch


def batch_indices(n: int, batch_size: int, shuffle: bool, seed: int = 0,
                  lengths: Sequence[int] | None = None) -> Iterator[list[int]]:
    """Seeded shuffled batches for training; length-sorted batches for evaluation (less padding)."""
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    elif lengths is not None:
        order = sorted(range(n), key=lambda i: lengths[i])
    else:
        order = list(range(n))
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]
