"""FreeLB (Zhu et al. 2020): K ascent steps on an embedding perturbation, gradients accumulated.

Per step t: loss_t = CE(f(E + delta_t), y) / K is backpropagated (parameter gradients accumulate
over the K steps: "free" adversarial training); delta moves by adv_lr * g / ||g||_2 per example
and is projected back to ||delta||_2 <= adv_max_norm (0 = unbounded). delta_0 is uniform in
[-1, 1] scaled by adv_init_mag / sqrt(length * hidden) and zero at padding.

With VDA, the regulariser is computed once per batch on the clean input and backpropagated once.
The authors' release instead adds it at every ascent step; that costs K x (k+1) forward passes
per batch instead of k+1, and Eq. 6 defines the term between the *clean* and virtual inputs, so
the perturbed branches add nothing to it but cost.
"""

from __future__ import annotations

from typing import Any

import torch

from vda.objective import StepContext, classify_embeds, cross_entropy


def initial_delta(mask: torch.Tensor, hidden: int, magnitude: float, dtype: torch.dtype) -> torch.Tensor:
    """Uniform init normalised by sqrt(length * hidden), zero at padding: [B, L, d]."""
    m = mask.unsqueeze(-1).to(dtype)
    if magnitude <= 0:
        return torch.zeros(*mask.shape, hidden, dtype=dtype, device=mask.device)
    delta = torch.empty(*mask.shape, hidden, dtype=dtype, device=mask.device).uniform_(-1, 1) * m
    scale = magnitude / torch.sqrt(m.sum(dim=(1, 2)) * hidden)
    return delta * scale.view(-1, 1, 1)


def ascend(delta: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor, lr: float, max_norm: float) -> torch.Tensor:
    """One per-example L2-normalised ascent step, then projection onto the max_norm ball."""
    grad = grad * mask.unsqueeze(-1).to(grad.dtype)
    norm = grad.flatten(1).norm(dim=1).clamp_min(1e-8).view(-1, 1, 1)
    delta = delta + lr * grad / norm
    if max_norm > 0:
        size = delta.flatten(1).norm(dim=1).view(-1, 1, 1)
        delta = delta * torch.clamp(max_norm / size.clamp_min(1e-12), max=1.0)
    return delta.detach()


def freelb_step(model: Any, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, float]:
    p, labels, mask = ctx.params, batch["labels"], batch["attention_mask"]
    embed = model.get_input_embeddings()
    delta = initial_delta(mask, embed.weight.shape[1], p.adv_init_mag, embed.weight.dtype)
    total = 0.0
    for t in range(p.adv_steps):
        delta.requires_grad_()
        with ctx.autocast():
            loss = cross_entropy(classify_embeds(model, embed(batch["input_ids"]) + delta, batch), labels, p)
        ctx.backward(loss / p.adv_steps)
        total += loss.item() / p.adv_steps
        if t < p.adv_steps - 1:
            delta = ascend(delta.detach(), delta.grad.detach(), mask, p.adv_lr, p.adv_max_norm)
    logs = {"adv_ce": total}
    if ctx.vda is not None:
        with ctx.autocast():
            clean, virtual = ctx.vda.logits(model, batch)
            term, term_logs = ctx.vda.weighted(clean, virtual, labels)
        ctx.backward(term)
        logs.update(term_logs)
        total += term.item()
    return {"loss": total, **logs}
