"""Virtual embeddings from a frozen masked LM (paper section 4.1, Algorithm 1 lines 5-10).

The MLM reads the *unmasked* input once per batch under ``torch.no_grad()`` (the authors' code
lets gradients flow into the MLM for nothing). Its encoder runs once; its output head, which
makes the [n, V] logits, runs over chunks of at most ``chunk_positions`` non-padding positions so
the full-vocabulary modes never hold a [B, L, V] tensor: per chunk the noise-free scores are
computed once and the k noisy mixtures are drawn from them.

Which matrix the mixture weights is the one difference between ``paper``/``sharp`` (the frozen
MLM's, Eq. 5 read as written) and ``code`` (the classifier's own trainable matrix, gradients
flowing, as the authors' released code does; ``vda.objective.VDATerm`` passes it in). In ``code``
mode the chunks bound the scoring memory only: autograd keeps each chunk's [n, V] weights for the
backward pass into the matrix.

In ``sharp`` mode the noise-free scores of an example (its top-K candidates and their
log-probabilities) never change: the MLM is frozen and reads the same unmasked input every epoch.
The trainer therefore computes them for the whole training split before the first step
(``vda.candidates``, which scores with ``VirtualAugmenter.score``) and hands the table to the
augmenter, so a VDA step costs the (k+1)x classifier passes and no MLM pass at all.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Protocol, Sequence

import torch

from vda.config import VDAConfig
from vda.substitution import ScoredPositions, discrete_tokens, mix_embeddings, sample_substitution, score_positions


class ScoreTable(Protocol):
    """Precomputed noise-free scores by example: ``vda.candidates.CandidateTable``.

    Declared here, where it is read: ``vda.candidates`` builds its tables with this module's
    augmenter, so this module must not import it back (the two would import each other).
    """

    def rows(self, keys: Sequence[int], device: torch.device) -> ScoredPositions:
        """The examples' positions back to back (row-major in the batch), as the MLM path yields them."""


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
        # Sharp mode: the training split's scores, set by the trainer (vda.candidates); None: the MLM scores
        self.table: ScoreTable | None = None

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, k: int,
                 token_type_ids: torch.Tensor | None = None, generator: torch.Generator | None = None,
                 keys: Sequence[int] | None = None, embedding: torch.Tensor | None = None) -> torch.Tensor:
        """Return [k, N, d] virtual embeddings of the N non-padding positions (row-major in the batch).

        ``keys`` (each example's index in the training split) lets the sharp mode read the examples'
        scores from ``table`` instead of running the MLM. ``embedding`` is the matrix the mixture
        weights (default: the MLM's own, Eq. 5); the ``code`` mode passes the classifier's trainable
        matrix, and the mixture then carries gradient into every one of its rows, as in the authors'
        code. The scores and the noise never carry gradient: the MLM stays frozen.
        """
        matrix = self.embedding if embedding is None else embedding
        positions = attention_mask.bool()
        ids = input_ids[positions]
        chunks: Iterable[ScoredPositions]
        if self.table is not None and keys is not None:
            chunks = self._table_chunks(self.table, keys, ids)
        else:
            chunks = self._scored_chunks(input_ids, attention_mask, token_type_ids, positions, ids)
        samples: list[list[torch.Tensor]] = [[] for _ in range(k)]
        for scored in chunks:
            for j in range(k):  # chunk-major, as the noise has always been drawn
                with torch.no_grad():
                    sub = sample_substitution(scored, self.cfg, generator)
                    tokens = None if self.cfg.augment == "mixture" else discrete_tokens(sub, self.cfg.augment,
                                                                                        generator)
                samples[j].append(mix_embeddings(sub, matrix) if tokens is None else matrix[tokens])
        if not ids.shape[0]:
            return matrix.new_empty(k, 0, matrix.shape[1])
        return torch.stack([torch.cat(pieces) for pieces in samples])

    @torch.no_grad()
    def score(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              token_type_ids: torch.Tensor | None = None) -> ScoredPositions:
        """The noise-free scores of every non-padding position, row-major: what the candidate table stores."""
        positions = attention_mask.bool()
        chunks = list(self._scored_chunks(input_ids, attention_mask, token_type_ids, positions, input_ids[positions]))
        return ScoredPositions(torch.cat([c.indices for c in chunks]), torch.cat([c.scores for c in chunks]))

    def _table_chunks(self, table: ScoreTable, keys: Sequence[int], ids: torch.Tensor) -> list[ScoredPositions]:
        """The examples' rows of ``table``, in the MLM path's chunks so the noise is drawn in the same order."""
        scored = table.rows(keys, ids.device)
        if not torch.equal(scored.indices[:, -1], ids):  # the last candidate column is each position's own token
            raise ValueError("the vda candidate table's rows do not hold this batch's tokens: the batch's example "
                             "keys must be indices into the training split the table was built from")
        step = self.cfg.chunk_positions
        return [ScoredPositions(scored.indices[i:i + step], scored.scores[i:i + step])
                for i in range(0, ids.shape[0], step)]

    @torch.no_grad()  # torch keeps a decorated generator's no-grad mode to its own steps
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


def compose_virtual_inputs(real_embeds: torch.Tensor, virtual: torch.Tensor,
                           attention_mask: torch.Tensor) -> torch.Tensor:
    """[k, B, L, d] inputs: virtual embeddings at real positions, the real embedding at padding."""
    k = virtual.shape[0]
    out = real_embeds.unsqueeze(0).expand(k, *real_embeds.shape).clone()
    out[:, attention_mask.bool()] = virtual.to(out.dtype)
    return out
