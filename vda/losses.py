"""Losses of the VDA objective (paper Eq. 1, 6, 7).

``symmetric_kl`` is D_sKL(p, q) = KL(p||q) + KL(q||p) = sum_c (p_c - q_c)(log p_c - log q_c),
summed over classes and averaged over the batch ("batchmean"). Gradients flow into both
arguments, as in the authors' code: the clean prediction is pulled towards the virtual ones too.
(The authors' release uses element-wise mean and a factor 0.5, i.e. an effective lambda of 0.5/C
relative to this definition.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vda.config import VDAConfig


def symmetric_kl(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """Batch-mean symmetric KL between the softmax distributions of two [B, C] logit tensors."""
    log_p = F.log_softmax(logits_p.float(), dim=-1)
    log_q = F.log_softmax(logits_q.float(), dim=-1)
    return ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(dim=-1).mean()


def vda_regulariser(clean_logits: torch.Tensor, virtual_logits: torch.Tensor, labels: torch.Tensor,
                    cfg: VDAConfig) -> torch.Tensor:
    """(1/k) sum_j L_reg over the k virtual samples ([k, B, C] logits): Eq. 6, or CE-VDA (Table 4)."""
    if cfg.loss == "symkl":
        terms = [symmetric_kl(clean_logits, v) for v in virtual_logits]
    else:
        terms = [F.cross_entropy(v.float(), labels) for v in virtual_logits]
    return torch.stack(terms).mean()
