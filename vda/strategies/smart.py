"""SMART's smoothness-inducing adversarial regulariser (Jiang et al. 2020), without the Bregman
proximal point step (as in the VDA paper, section 5.1.2).

noise ~ N(0, smart_noise_var) on the word embeddings; one ascent step of size smart_step on
symKL(f(E + noise), f(E)) with the gradient normalised per token under the L-inf norm; then
loss = CE(f(E), y) + smart_weight * symKL(f(E + noise*), f(E)) (+ lambda * L_reg with VDA, whose
clean logits are the same forward pass). With zero noise and zero step the term is exactly 0.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from vda.losses import symmetric_kl
from vda.objective import StepContext, classify_embeds, cross_entropy


def smart_step(model: Any, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, float]:
    p, labels = ctx.params, batch["labels"]
    with ctx.autocast():
        real = model.get_input_embeddings()(batch["input_ids"])
        if ctx.vda is not None:
            clean, virtual = ctx.vda.logits(model, batch, real)
        else:
            clean, virtual = classify_embeds(model, real, batch), None
        noise = torch.randn(real.shape, generator=ctx.generator, device=real.device, dtype=real.dtype)
        noise = (noise * math.sqrt(p.smart_noise_var)).requires_grad_()
        probe = symmetric_kl(classify_embeds(model, real.detach() + noise, batch), clean.detach())
    grad, = torch.autograd.grad(probe, noise)
    grad = grad / (grad.abs().amax(dim=-1, keepdim=True) + 1e-6)  # L-inf normalisation per token
    noise = (noise + p.smart_step * grad).detach()
    with ctx.autocast():
        smooth = symmetric_kl(classify_embeds(model, real + noise, batch), clean)
        ce = cross_entropy(clean, labels, ctx.params)
        loss = ce + p.smart_weight * smooth
        logs = {"ce": ce.item(), "smart": smooth.item()}
        if virtual is not None:
            term, term_logs = ctx.vda.weighted(clean, virtual, labels)
            loss = loss + term
            logs.update(term_logs)
    ctx.backward(loss)
    return {"loss": loss.item(), **logs}
