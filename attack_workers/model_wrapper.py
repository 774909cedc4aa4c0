"""TextAttack's model seam for our checkpoints: ``ModelWrapper.__call__(texts) -> logits``.

Why not ``HuggingFaceModelWrapper``: it pads every query to ``tokenizer.model_max_length`` (512),
so a 20-word review costs as much as a 512-token document; on CPU that padding is most of an
attack's time. Here each batch is padded to its own longest input, and truncated at the
``max_length`` the checkpoint was fine-tuned with (``manifest.config["data"]["max_length"]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from attack_workers.offline import import_textattack

import_textattack()
from textattack.models.wrappers import ModelWrapper  # noqa: E402  (needs the offline provisioning above)


class DynamicPaddingModelWrapper(ModelWrapper):
    """Classifier logits for single texts (``str``) or sentence pairs (``(str, str)`` tuples)."""

    def __init__(self, model: Any, tokenizer: Any, max_length: int, batch_size: int = 64) -> None:
        self.model = model  # TextAttack's validators read ``wrapper.model``
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def __call__(self, text_input_list: Sequence[str | tuple[str, ...]]) -> torch.Tensor:
        outputs = []
        for start in range(0, len(text_input_list), self.batch_size):
            batch = list(text_input_list[start:start + self.batch_size])
            outputs.append(self._logits(batch))
        return torch.cat(outputs) if outputs else torch.empty(0)

    @torch.inference_mode()
    def _logits(self, batch: list[str | tuple[str, ...]]) -> torch.Tensor:
        if isinstance(batch[0], tuple):
            firsts, seconds = zip(*batch)
            enc = self.tokenizer(list(firsts), list(seconds), padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")
        else:
            enc = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt")
        return self.model(**enc.to(self.device)).logits.float().cpu()
