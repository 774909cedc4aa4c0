"""Losses of the VDA objective (paper Eq. 1, 6, 7).

``symmetric_kl`` is D_sKL(p, q) = KL(p||q) + KL(q||p) = sum_c (p_c - q_c)(log p_c - log q_c),
summed over classes and averaged over the batch ("batchmean"). Gradients flow into both
arguments, as in the authors' code: the clean prediction is pulled towards the virtual ones too.
(The authors' release uses element-wise mean and a factor 0.5, i.e. an effective lambda of 0.5/C
relative to this definition: ``vda.config.CODE_KL_WEIGHT``.)

``confidence_penalty`` is the same divergence to the uniform distribution: what VDA's term becomes
when the virtual prediction sits at the class prior, as the authors' content-free virtual input
makes it (the mechanism study's control without a virtual pass).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vda.config import VDAConfig


def _symmetric_kl_of_logs(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    return ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(dim=-1).mean()


def symmetric_kl(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """Batch-mean symmetric KL between the softmax distributions of two [B, C] logit tensors."""
    return _symmetric_kl_of_logs(F.log_softmax(logits_p.float(), dim=-1), F.log_softmax(logits_q.float(), dim=-1))


def confidence_penalty(logits: torch.Tensor) -> torch.Tensor:
    """Batch-mean symmetric KL between the softmax of [B, C] logits and the uniform distribution."""
    log_p = F.log_softmax(logits.float(), dim=-1)
    return _symmetric_kl_of_logs(log_p, torch.full_like(log_p, -math.log(log_p.shape[-1])))


def vda_regulariser(clean_logits: torch.Tensor, virtual_logits: torch.Tensor, labels: torch.Tensor,
                    cfg: VDAConfig) -> torch.Tensor:
    """(1/k) sum_j L_reg over the k virtual samples ([k, B, C] logits): Eq. 6, or CE-VDA (Table 4)."""
    if cfg.loss == "symkl":
        terms = [symmetric_kl(clean_logits, v) for v in virtual_logits]
    else:
        terms = [F.cross_entropy(v.float(), labels) for v in virtual_logits]
    return torch.stack(terms).mean()
