"""TextAttack's model seam for our checkpoints: ``ModelWrapper.__call__(texts) -> logits``.

Why not ``HuggingFaceModelWrapper``: it pads every query to ``tokenizer.model_max_length`` (512),
so a 20-word review costs as much as a 512-token document; on CPU that padding is most of an
attack's time. Here each batch is padded to its own longest input, and truncated at the
``max_length`` the checkpoint was fine-tuned with (``manifest.config["data"]["max_length"]``).

Why a memo keyed by the *truncated* encoding: on a text longer than the classifier's window,
every query that changes a word beyond the window (the [UNK] of the word-importance ranking,
each candidate swap) is the same model input as the text itself. TextAttack's own cache is keyed
by the text, so it runs the model for each of them: on IMDb-length reviews at ``max_length`` 64
that was most of ~470 queries per example. The goal function still counts those queries (Q Num is
a property of the protocol, not of this shortcut); the model runs once per distinct input.
"""

from __future__ import annotations

import hashlib
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch

from attack_workers.attack.offline import import_textattack

import_textattack()
from textattack.models.wrappers import ModelWrapper  # noqa: E402  (needs the offline provisioning above)

Query = str | tuple[str, ...]


class DynamicPaddingModelWrapper(ModelWrapper):
    """Classifier logits for single texts (``str``) or sentence pairs (``(str, str)`` tuples)."""

    def __init__(self, model: Any, tokenizer: Any, max_length: int, batch_size: int = 64,
                 memo_size: int = 50_000) -> None:
        self.model = model  # TextAttack's validators read ``wrapper.model``
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.memo_size = memo_size
        self._memo: OrderedDict[bytes, torch.Tensor] = OrderedDict()  # truncated-input digest -> logits (LRU)
        self.forward_inputs = 0  # inputs the model actually ran on (the rest came from the memo)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def __call__(self, text_input_list: Sequence[Query]) -> torch.Tensor:
        if not len(text_input_list):
            return torch.empty(0)
        encodings = self._encode(list(text_input_list))
        keys = [_digest(e) for e in encodings]
        known = {k: self._memo[k] for k in keys if k in self._memo}
        missing = list(dict.fromkeys(k for k in keys if k not in known))
        first: dict[bytes, int] = {}
        for index, key in enumerate(keys):
            first.setdefault(key, index)
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start:start + self.batch_size]
            known.update(zip(chunk, self._logits([encodings[first[k]] for k in chunk])))
        for key in keys:
            self._remember(key, known[key])
        return torch.stack([known[k] for k in keys])

    def _encode(self, queries: list[Query]) -> list[dict[str, list[int]]]:
        """The tokenizer's truncated, unpadded encoding of every query: what the model would see."""
        if isinstance(queries[0], tuple):
            firsts, seconds = zip(*queries)
            enc = self.tokenizer(list(firsts), list(seconds), truncation=True, max_length=self.max_length)
        else:
            enc = self.tokenizer(queries, truncation=True, max_length=self.max_length)
        return [{name: enc[name][i] for name in enc} for i in range(len(queries))]

    @torch.inference_mode()
    def _logits(self, encodings: list[dict[str, list[int]]]) -> torch.Tensor:
        """One forward pass over ``encodings``, padded to the longest of them (on the tokenizer's side)."""
        width = max(len(e["input_ids"]) for e in encodings)
        pad_values = {"input_ids": self.tokenizer.pad_token_id}  # token types and attention mask pad with 0
        left = self.tokenizer.padding_side == "left"
        batch = {}
        for name in encodings[0]:
            pad = pad_values.get(name, 0)
            rows = [[pad] * (width - len(e[name])) + e[name] if left else e[name] + [pad] * (width - len(e[name]))
                    for e in encodings]
            batch[name] = torch.tensor(rows, device=self.device)
        self.forward_inputs += len(encodings)
        return self.model(**batch).logits.float().cpu()

    def _remember(self, key: bytes, logits: torch.Tensor) -> None:
        """Keep ``logits`` as the most recently used entry, dropping the least recently used beyond ``memo_size``."""
        self._memo[key] = logits
        self._memo.move_to_end(key)
        while len(self._memo) > self.memo_size:
            self._memo.popitem(last=False)


def _digest(encoding: dict[str, list[int]]) -> bytes:
    """A short key for one encoding: every field (ids, token types, mask) in a fixed order."""
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(encoding):
        h.update(name.encode())
        h.update(array("i", encoding[name]).tobytes())
    return h.digest()
