"""Substitution distributions p'(w | S) over replacement tokens (paper Eq. 2-4), one per input position.

Three modes (``VDAConfig.mode``), chosen explicitly and recorded in every manifest because they
behave very differently:

- ``paper``: Eq. 4 literally: p = softmax(logits), p' = softmax(p + eps). Since p is a probability
  over ~30k tokens, p + eps is within ~1 of 0 everywhere and p' is almost uniform: the virtual
  token is nearly the mean embedding (entropy / log V ~ 1.0, see tests/vda/test_substitution.py).
- ``code``: the authors' release: p = logits / sum(logits), p' = softmax(p + eps). Same collapse.
- ``sharp``: restricted to the MLM's top-K candidates plus the original token, with noise in
  log-probability space: p' = softmax((log p + eps) / T). The mixture stays on plausible
  substitutes; sigma is then in nats (useful range ~0.5-2), T sharpens or flattens.

A distribution is returned as ``Substitution(indices, weights)``: ``indices`` is None for the
full-vocabulary modes (weights are [n, V]) or [n, C] candidate token ids for ``sharp``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vda.config import VDAConfig


@dataclass
class Substitution:
    indices: torch.Tensor | None  # [n, C] token ids, or None: weights cover the whole vocabulary
    weights: torch.Tensor  # [n, C] or [n, V]; rows sum to 1


@dataclass
class ScoredPositions:
    """Noise-free scores of one chunk of positions, computed once and shared by the k samples."""

    indices: torch.Tensor | None
    scores: torch.Tensor  # the quantity eps is added to (p for paper/code, log p for sharp)


def score_positions(logits: torch.Tensor, input_ids: torch.Tensor, cfg: VDAConfig) -> ScoredPositions:
    """Turn MLM logits [n, V] of unmasked positions into the mode's noise-free scores."""
    logits = logits.float()
    if cfg.mode == "paper":
        return ScoredPositions(None, torch.softmax(logits, dim=-1))
    if cfg.mode == "code":
        return ScoredPositions(None, logits / logits.sum(dim=-1, keepdim=True))
    logp = torch.log_softmax(logits, dim=-1)
    top = torch.topk(logp, k=min(cfg.top_k, logp.shape[-1]), dim=-1).indices
    indices = torch.cat([top, input_ids.unsqueeze(-1)], dim=-1)
    scores = torch.gather(logp, -1, indices)
    # The original token is always a candidate; when it is already in the top-K, mask the duplicate.
    duplicate = (top == input_ids.unsqueeze(-1)).any(dim=-1)
    scores[:, -1] = torch.where(duplicate, torch.full_like(scores[:, -1], float("-inf")), scores[:, -1])
    return ScoredPositions(indices, scores)


def sample_substitution(scored: ScoredPositions, cfg: VDAConfig,
                        generator: torch.Generator | None = None) -> Substitution:
    """Draw eps ~ N(0, sigma^2) and return p' (Eq. 4 in the chosen mode)."""
    scores = scored.scores
    if cfg.noise and cfg.sigma > 0:
        eps = torch.randn(scores.shape, generator=generator, device=scores.device, dtype=scores.dtype)
        scores = scores + cfg.sigma * eps
    if cfg.mode == "sharp":
        scores = scores / cfg.temperature
    return Substitution(scored.indices, torch.softmax(scores, dim=-1))


def discrete_tokens(sub: Substitution, how: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """The Argmax / Sample ablations (paper Table 4): one token id per position instead of a mixture."""
    if how == "argmax":
        column = sub.weights.argmax(dim=-1)
    elif how == "sample":
        column = torch.multinomial(sub.weights, 1, generator=generator).squeeze(-1)
    else:
        raise ValueError(f"unknown discrete augmentation {how!r}; use 'argmax' or 'sample'")
    if sub.indices is None:
        return column
    return torch.gather(sub.indices, -1, column.unsqueeze(-1)).squeeze(-1)


def mix_embeddings(sub: Substitution, embedding: torch.Tensor) -> torch.Tensor:
    """Eq. 5: e_hat = p' @ M_E, as a dense matmul (full vocabulary) or a gather over candidates."""
    if sub.indices is None:
        return sub.weights.to(embedding.dtype) @ embedding
    return torch.einsum("nc,ncd->nd", sub.weights.to(embedding.dtype), embedding[sub.indices])


def distribution_stats(sub: Substitution, input_ids: torch.Tensor, vocab_size: int) -> dict[str, float]:
    """Mean normalised entropy (H / log V) and mean mass on the original token: how sharp p' is."""
    w = sub.weights.float()
    entropy = -(w * torch.log(w.clamp_min(1e-30))).sum(-1)
    if sub.indices is None:
        orig = torch.gather(w, -1, input_ids.unsqueeze(-1)).squeeze(-1)
    else:
        orig = (w * (sub.indices == input_ids.unsqueeze(-1))).sum(-1)
    return {"entropy_ratio": float(entropy.mean() / math.log(vocab_size)), "original_mass": float(orig.mean()),
            "max_weight": float(w.max(dim=-1).values.mean())}
