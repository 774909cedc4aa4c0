"""Virtual embeddings from a frozen masked LM (paper section 4.1, Algorithm 1 lines 5-10).

The MLM reads the *unmasked* input once per batch under ``torch.no_grad()`` (the authors' code
lets gradients flow into the MLM for nothing). Its encoder runs once; its output head, which
makes the [n, V] logits, runs over chunks of at most ``chunk_positions`` non-padding positions so
the full-vocabulary modes never hold a [B, L, V] tensor: per chunk the noise-free scores are
computed once and the k noisy mixtures are drawn from them.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from vda.config import VDAConfig
from vda.substitution import discrete_tokens, mix_embeddings, sample_substitution, score_positions


def _split_mlm(mlm: Any) -> tuple[Callable[..., Any], Callable[[torch.Tensor], torch.Tensor] | None]:
    """(encoder, head) of BERT/RoBERTa-style MLMs; head None means 'run the whole model' (fallback)."""
    head = getattr(mlm, "cls", None) or getattr(mlm, "lm_head", None)
    return (mlm.base_model if head is not None else mlm), head


class VirtualAugmenter:
    """Makes k virtual embedding sequences per batch from a frozen MLM."""

    def __init__(self, mlm: Any, cfg: VDAConfig) -> None:
        self.mlm = mlm.eval().requires_grad_(False)
        self.cfg = cfg
        self.encoder, self.head = _split_mlm(mlm)
        self.embedding = mlm.get_input_embeddings().weight  # M_E in Eq. 5: the MLM's token embeddings

    @torch.no_grad()
    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, k: int,
                 token_type_ids: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Return [k, N, d] virtual embeddings of the N non-padding positions (row-major in the batch)."""
        positions = attention_mask.bool()
        hidden = self._hidden_or_logits(input_ids, attention_mask, token_type_ids)[positions]  # [N, h or V]
        ids = input_ids[positions]
        out = torch.empty(k, ids.shape[0], self.embedding.shape[1], dtype=self.embedding.dtype,
                          device=self.embedding.device)
        step = self.cfg.chunk_positions
        for start in range(0, ids.shape[0], step):
            rows = slice(start, start + step)
            logits = self.head(hidden[rows]) if self.head is not None else hidden[rows]
            scored = score_positions(logits, ids[rows], self.cfg)
            for j in range(k):
                sub = sample_substitution(scored, self.cfg, generator)
                if self.cfg.augment == "mixture":
                    out[j, rows] = mix_embeddings(sub, self.embedding)
                else:
                    out[j, rows] = self.embedding[discrete_tokens(sub, self.cfg.augment, generator)]
        return out

    def _hidden_or_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                          token_type_ids: torch.Tensor | None) -> torch.Tensor:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        output = self.encoder(**kwargs)
        return output.last_hidden_state if self.head is not None else output.logits


def compose_virtual_inputs(real_embeds: torch.Tensor, virtual: torch.Tensor,
                           attention_mask: torch.Tensor) -> torch.Tensor:
    """[k, B, L, d] inputs: virtual embeddings at real positions, the real embedding at padding."""
    k = virtual.shape[0]
    out = real_embeds.unsqueeze(0).expand(k, *real_embeds.shape).clone()
    out[:, attention_mask.bool()] = virtual.to(out.dtype)
    return out
