"""Virtual embeddings from a frozen masked LM (paper section 4.1, Algorithm 1 lines 5-10).

The MLM reads the *unmasked* input once per batch under ``torch.no_grad()`` (the authors' code
lets gradients flow into the MLM for nothing). Its encoder runs once; its output head, which
makes the [n, V] logits, runs over chunks of at most ``chunk_positions`` non-padding positions so
the full-vocabulary modes never hold a [B, L, V] tensor: per chunk the noise-free scores are
computed once and the k noisy mixtures are drawn from them.

In ``sharp`` mode the noise-free scores of an example (its top-K candidates and their
log-probabilities) never change: the MLM is frozen and reads the same unmasked input every epoch.
``CandidateCache`` keeps them per training example, so after the first epoch a VDA step costs the
(k+1)x classifier passes and no MLM pass at all.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Sequence

import torch

from vda.config import VDAConfig
from vda.substitution import ScoredPositions, discrete_tokens, mix_embeddings, sample_substitution, score_positions

log = logging.getLogger(__name__)


def _split_mlm(mlm: Any) -> tuple[Callable[..., Any], Callable[[torch.Tensor], torch.Tensor] | None]:
    """(encoder, head) of BERT/RoBERTa-style MLMs; head None means 'run the whole model' (fallback)."""
    head = getattr(mlm, "cls", None) or getattr(mlm, "lm_head", None)
    return (mlm.base_model if head is not None else mlm), head


class CandidateCache:
    """Per training example: its positions' candidate ids [n_i, K+1] and noise-free scores, kept on the CPU.

    Holds at most ``max_bytes``; examples met after it is full are scored by the MLM every time (a
    warning says so once). Keys must identify an input exactly: the trainer uses the example's index
    in the tokenised training split, which is fixed for the whole run.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.bytes, self.warned = max_bytes, 0, False
        self._entries: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def lookup(self, keys: Sequence[int], device: torch.device) -> ScoredPositions | None:
        """The batch's scores in row-major position order, or None unless every example is cached."""
        if not all(key in self._entries for key in keys):
            return None
        indices, scores = zip(*(self._entries[key] for key in keys))
        return ScoredPositions(torch.cat(indices).to(device, torch.long), torch.cat(scores).to(device))

    def store(self, keys: Sequence[int], lengths: Sequence[int], scored: ScoredPositions) -> None:
        """Split a batch's scores (row-major, ``lengths`` positions per example) into per-example entries."""
        assert scored.indices is not None, "only the sharp mode's candidate scores are cacheable"
        rows = zip(scored.indices.to("cpu", torch.int32).split(list(lengths)), scored.scores.cpu().split(list(lengths)))
        for key, (indices, scores) in zip(keys, rows):
            if key in self._entries:
                continue
            size = indices.nbytes + scores.nbytes
            if self.bytes + size > self.max_bytes:
                if not self.warned:
                    log.warning("vda candidate cache is full (%d MiB, vda.cache_mb); further examples are scored "
                                "by the MLM at every step", self.max_bytes >> 20)
                    self.warned = True
                return
            self._entries[key] = (indices.clone(), scores.clone())
            self.bytes += size

    def __len__(self) -> int:
        return len(self._entries)


class VirtualAugmenter:
    """Makes k virtual embedding sequences per batch from a frozen MLM."""

    def __init__(self, mlm: Any, cfg: VDAConfig) -> None:
        self.mlm = mlm.eval().requires_grad_(False)
        self.cfg = cfg
        self.encoder, self.head = _split_mlm(mlm)
        self.embedding = mlm.get_input_embeddings().weight  # M_E in Eq. 5: the MLM's token embeddings
        self.cache = CandidateCache(cfg.cache_mb << 20) if cfg.mode == "sharp" and cfg.cache_mb > 0 else None

    @torch.no_grad()
    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, k: int,
                 token_type_ids: torch.Tensor | None = None, generator: torch.Generator | None = None,
                 keys: Sequence[int] | None = None) -> torch.Tensor:
        """Return [k, N, d] virtual embeddings of the N non-padding positions (row-major in the batch).

        ``keys`` (one stable id per example, e.g. its index in the training split) lets the sharp
        mode reuse the example's candidates from the cache instead of running the MLM.
        """
        positions = attention_mask.bool()
        ids = input_ids[positions]
        if self.cache is not None and keys is not None:
            scored = self.cache.lookup(keys, ids.device)
            if scored is None:
                scored = _concat(list(self._scored_chunks(input_ids, attention_mask, token_type_ids, positions, ids)))
                self.cache.store(keys, positions.sum(dim=1).tolist(), scored)
            # the same chunks as the MLM path, so the noise is drawn in the same order
            step = self.cfg.chunk_positions
            chunks: Iterable[ScoredPositions] = [ScoredPositions(scored.indices[i:i + step], scored.scores[i:i + step])
                                                 for i in range(0, ids.shape[0], step)]
        else:
            chunks = self._scored_chunks(input_ids, attention_mask, token_type_ids, positions, ids)
        out = torch.empty(k, ids.shape[0], self.embedding.shape[1], dtype=self.embedding.dtype,
                          device=self.embedding.device)
        start = 0
        for scored in chunks:
            rows = slice(start, start + scored.scores.shape[0])
            start = rows.stop
            for j in range(k):
                sub = sample_substitution(scored, self.cfg, generator)
                if self.cfg.augment == "mixture":
                    out[j, rows] = mix_embeddings(sub, self.embedding)
                else:
                    out[j, rows] = self.embedding[discrete_tokens(sub, self.cfg.augment, generator)]
        return out

    def _scored_chunks(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                       token_type_ids: torch.Tensor | None, positions: torch.Tensor,
                       ids: torch.Tensor) -> Iterable[ScoredPositions]:
        """The MLM's noise-free scores of the non-padding positions, ``chunk_positions`` rows at a time."""
        hidden = self._hidden_or_logits(input_ids, attention_mask, token_type_ids)[positions]  # [N, h or V]
        step = self.cfg.chunk_positions
        for start in range(0, ids.shape[0], step):
            rows = slice(start, start + step)
            logits = self.head(hidden[rows]) if self.head is not None else hidden[rows]
            yield score_positions(logits, ids[rows], self.cfg)

    def _hidden_or_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                          token_type_ids: torch.Tensor | None) -> torch.Tensor:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        output = self.encoder(**kwargs)
        return output.last_hidden_state if self.head is not None else output.logits


def _concat(chunks: list[ScoredPositions]) -> ScoredPositions:
    return ScoredPositions(torch.cat([c.indices for c in chunks]), torch.cat([c.scores for c in chunks]))


def compose_virtual_inputs(real_embeds: torch.Tensor, virtual: torch.Tensor,
                           attention_mask: torch.Tensor) -> torch.Tensor:
    """[k, B, L, d] inputs: virtual embeddings at real positions, the real embedding at padding."""
    k = virtual.shape[0]
    out = real_embeds.unsqueeze(0).expand(k, *real_embeds.shape).clone()
    out[:, attention_mask.bool()] = virtual.to(out.dtype)
    return out
