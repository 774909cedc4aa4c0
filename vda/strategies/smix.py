"""SMix (Si et al. 2020) without its adversarial augmentation: mixup of [CLS] hidden states.

A forward hook on encoder layer ``mix_layer`` replaces each example's [CLS] output h_i by
r * h_i + (1 - r) * h_perm(i), r ~ Beta(mix_alpha, mix_alpha); the loss is
r * CE(y_i) + (1 - r) * CE(y_perm(i)). With VDA its regulariser comes from a separate, unmixed
clean + virtual forward pass (the mixed pass has no single clean prediction to compare with).
"""

from __future__ import annotations

from typing import Any

import torch

from vda.objective import StepContext, cross_entropy, model_inputs


def encoder_layers(model: Any) -> Any:
    """The transformer blocks of BERT/RoBERTa-style classifiers."""
    try:
        return model.base_model.encoder.layer
    except AttributeError:
        raise ValueError(f"strategy smix needs a BERT/RoBERTa-style encoder (model.base_model.encoder.layer); "
                         f"{type(model).__name__} has none; use another strategy") from None


def mix_hook(ratio: float, perm: torch.Tensor):
    """A forward hook that mixes the [CLS] position of the layer's output hidden states."""

    def hook(module: Any, inputs: Any, output: Any) -> Any:
        hidden = output[0] if isinstance(output, tuple) else output
        mixed = hidden.clone()
        mixed[:, 0] = ratio * hidden[:, 0] + (1 - ratio) * hidden[perm, 0]
        return (mixed, *output[1:]) if isinstance(output, tuple) else mixed

    return hook


def smix_step(model: Any, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, float]:
    p, labels = ctx.params, batch["labels"]
    layers = encoder_layers(model)
    if not -1 <= p.mix_layer < len(layers):
        raise ValueError(f"strategy.mix_layer={p.mix_layer} but the model has {len(layers)} layers; "
                         f"use -1..{len(layers) - 1}")
    ratio = float(torch.distributions.Beta(p.mix_alpha, p.mix_alpha).sample())
    perm = torch.randperm(labels.shape[0]).to(labels.device)  # global RNG: seeded by fit()
    handle = layers[p.mix_layer].register_forward_hook(mix_hook(ratio, perm))
    try:
        with ctx.autocast():
            logits = model(input_ids=batch["input_ids"], **model_inputs(batch)).logits
    finally:
        handle.remove()
    with ctx.autocast():
        mix = (ratio * cross_entropy(logits, labels, ctx.params)
               + (1 - ratio) * cross_entropy(logits, labels[perm], ctx.params))
        loss, logs = mix, {"mix_ce": mix.item(), "mix_ratio": ratio}
        if ctx.vda is not None:
            clean, virtual = ctx.vda.logits(model, batch)
            term, term_logs = ctx.vda.weighted(clean, virtual, labels)
            loss = loss + term
            logs.update(term_logs)
    ctx.backward(loss)
    return {"loss": loss.item(), **logs}
