"""One training step's loss: CE(f(E), y) + lambda * (1/k) * sum_j L_reg(f(E), f(E_hat_j))  (paper Eq. 1).

The clean batch and its k virtual copies go through the classifier as one batch of (k+1)*B
sequences via ``inputs_embeds``, so the embedding layer adds position and segment embeddings as
usual and one forward/backward serves all k+1 passes (the (k+1)x cost floor of the method).
With ``lam == 0`` this is exactly plain fine-tuning on ``input_ids``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from vda.augment import VirtualAugmenter, compose_virtual_inputs
from vda.config import VDAConfig
from vda.losses import vda_regulariser

MODEL_INPUTS = ("attention_mask", "token_type_ids")


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors besides ids/embeddings that the classifier takes (token types only if present)."""
    return {k: batch[k] for k in MODEL_INPUTS if k in batch}


def plain_loss(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    logits = model(input_ids=batch["input_ids"], **model_inputs(batch)).logits
    ce = F.cross_entropy(logits.float(), batch["labels"])
    return ce, {"ce": ce.item()}


def vda_loss(model: Any, batch: dict[str, torch.Tensor], augmenter: VirtualAugmenter, cfg: VDAConfig,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The full VDA objective for one batch; returns (loss, logged parts)."""
    if not cfg.enabled:
        return plain_loss(model, batch)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    virtual = augmenter(ids, mask, cfg.k, batch.get("token_type_ids"), generator)  # [k, N, d], no grad
    real = model.get_input_embeddings()(ids)  # [B, L, d]
    embeds = torch.cat([real.unsqueeze(0), compose_virtual_inputs(real, virtual, mask)]).flatten(0, 1)
    extra = {k: v.repeat(cfg.k + 1, 1) for k, v in model_inputs(batch).items()}
    logits = model(inputs_embeds=embeds, **extra).logits.view(cfg.k + 1, ids.shape[0], -1)
    ce = F.cross_entropy(logits[0].float(), batch["labels"])
    reg = vda_regulariser(logits[0], logits[1:], batch["labels"], cfg)
    return ce + cfg.lam * reg, {"ce": ce.item(), "reg": reg.item()}
