"""Plain fine-tuning: CE on the clean input (+ the VDA term from the same batched forward pass)."""

from __future__ import annotations

from typing import Any

import torch

from vda.objective import StepContext, cross_entropy, model_inputs


def plain_step(model: Any, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, float]:
    labels = batch["labels"]
    with ctx.autocast():
        if ctx.vda is None:
            logits = model(input_ids=batch["input_ids"], **model_inputs(batch)).logits
            ce = cross_entropy(logits, labels, ctx.params)
            loss, logs = ce, {"ce": ce.item()}
        else:
            clean, virtual = ctx.vda.logits(model, batch)
            ce = cross_entropy(clean, labels, ctx.params)
            term, term_logs = ctx.vda.weighted(clean, virtual, labels)
            loss, logs = ce + term, {"ce": ce.item(), **term_logs}
    ctx.backward(loss)
    return {"loss": loss.item(), **logs}
