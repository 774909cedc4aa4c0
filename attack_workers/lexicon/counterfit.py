"""Counter-fitting word vectors to linguistic constraints (Mrkšić et al., NAACL 2016).

Why: a word-substitution attack must only swap words for words of the same meaning. Raw
distributional vectors put antonyms close together ("good"/"bad" share contexts), so a cosine
filter over them lets "good -> bad" through. Counter-fitting moves the vectors so that

- antonym pairs repel:     AR  = sum over antonyms (u, w) of relu(delta - d(u, w))      (paper Eq. 1)
- synonym pairs attract:   SA  = sum over synonyms (u, w) of relu(d(u, w) - gamma)      (paper Eq. 2)
- the rest of the space is preserved: for pairs that were within ``rho`` of each other,
  VSP = sum of relu(d'(u, w) - d(u, w)), they may move closer but not apart          (paper Eq. 3)

with d = 1 - cosine. The paper's hyper-parameters are delta 1.0, gamma 0.0, rho 0.2 and equal
weights; it optimises with SGD for 20 epochs. Here each term is averaged over its pairs (so the
weights do not depend on how many constraints a vocabulary has) and the whole matrix is
optimised with Adam in full batches.

One deviation, measured: with WordNet's synonyms (chains of shared senses link "picture", "mess",
"deal", "love"...) and gamma = 0, the attraction merges large clusters of unrelated words (58 % of
a 33k vocabulary moved by more than 0.5; cos(picture, mess) went from 0.36 to 0.85 and 1.1 % of
random word pairs passed a 0.7 filter). Two changes stop that: synonyms are attracted only up to
distance ``gamma`` (0.2, i.e. cosine 0.8), and every vector is anchored to where it started,
``anchor_weight * |v' - v|^2`` (the retrofitting regulariser of Faruqui et al., NAACL 2015), so
a word moves only as far as its own constraints require. The anchor in turn held the antonyms
that matter most together (those the base vectors put close: predictable/unpredictable stayed at
0.82), so antonym repulsion weighs 10x: then every training antonym pair and 97 % of held-out
antonym pairs whose base cosine is >= 0.6 fall below 0.7, while 0.01 % of random pairs pass it. The
counter-fitted vectors of the authors' BERT-Attack filter were made the same way (on GloVe with
PPDB and WordNet constraints); ``attack_workers.lexicon.vectors`` applies it to this project's vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class CounterFitConfig:
    delta: float = 1.0  # paper: antonyms are pushed to distance >= 1, i.e. cosine <= 0
    gamma: float = 0.2  # paper: 0.0; here synonyms are pulled only to cosine 0.8 (see the module docstring)
    rho: float = 0.2  # paper: neighbours within distance 0.2 (cosine >= 0.8) keep their closeness
    antonym_weight: float = 10.0  # measured: at 1.0 the anchor held close antonyms together (module docstring)
    synonym_weight: float = 1.0
    preserve_weight: float = 1.0
    anchor_weight: float = 1.0  # not in the paper: keeps each vector near its start (module docstring)
    steps: int = 150
    lr: float = 0.01
    neighbours: int = 20  # at most this many rho-neighbours per word enter the preservation term
    block: int = 4096  # rows per similarity block when finding neighbours (memory bound)

    def validate(self) -> CounterFitConfig:
        problems = [f"{name}={getattr(self, name)} must be > 0" for name in ("steps", "lr", "neighbours", "block")
                    if not getattr(self, name) > 0]
        if not 0 < self.rho < 2:
            problems.append(f"rho={self.rho} must be a cosine distance in (0, 2)")
        if problems:
            raise ValueError("invalid counter-fitting config: " + "; ".join(problems))
        return self


def neighbour_pairs(vectors: torch.Tensor, rho: float, limit: int, block: int) -> torch.Tensor:
    """[P, 2] index pairs (i < j) whose cosine distance is below ``rho``, at most ``limit`` per row.

    Blockwise, so a 50k x 50k similarity matrix never exists at once.
    """
    unit = F.normalize(vectors, dim=1)
    pairs = []
    k = min(limit + 1, unit.shape[0])
    for start in range(0, unit.shape[0], block):
        sims = unit[start:start + block] @ unit.T
        values, cols = sims.topk(k, dim=1)
        rows = torch.arange(start, start + sims.shape[0]).unsqueeze(1).expand_as(cols)
        keep = (values > 1 - rho) & (cols > rows)
        pairs.append(torch.stack([rows[keep], cols[keep]], dim=1))
    return torch.cat(pairs) if pairs else torch.empty(0, 2, dtype=torch.long)


class _PairDot(torch.autograd.Function):
    """Dot products ``unit[i] . unit[j]`` of index pairs, with a deterministic backward pass.

    Autograd's backward of the gather ``unit[pairs[:, k]]`` is ``index_put_(accumulate=True)``, which
    on CPU with several threads adds the rows of pairs that share a word in a racing order: the
    last bits of the gradient, hence of the built vectors and their content hash, changed from one
    build to the next. Here the gradient is summed with ``index_add_``, which adds the pairs one
    after another in their given order, so the result depends neither on timing nor on the number
    of threads (``test_counterfit.py`` builds twice, and with 1 and 2 threads, at a realistic size).
    """

    @staticmethod
    def forward(ctx, unit: torch.Tensor, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        ctx.save_for_backward(unit, left, right)
        return (unit[left] * unit[right]).sum(dim=1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # noqa: ANN001
        unit, left, right = ctx.saved_tensors
        grad = grad.unsqueeze(1)
        out = torch.zeros_like(unit)
        out.index_add_(0, left, grad * unit[right])
        out.index_add_(0, right, grad * unit[left])
        return out, None, None


def _distance(unit: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    return 1 - _PairDot.apply(unit, pairs[:, 0].contiguous(), pairs[:, 1].contiguous())


def _mean(values: torch.Tensor) -> torch.Tensor:
    return values.mean() if values.numel() else values.new_zeros(())


def counter_fit(vectors: torch.Tensor, synonyms: torch.Tensor, antonyms: torch.Tensor,
                config: CounterFitConfig = CounterFitConfig(), seed: int = 0) -> torch.Tensor:
    """Counter-fitted, unit-length copy of ``vectors`` [N, d]; ``synonyms``/``antonyms`` are [P, 2] row pairs.

    Bit-reproducible on one machine for a given input, whatever the number of torch threads:
    full-batch Adam, no sampling (the seed only fixes torch's state for any kernel that draws), and
    the pair terms' gradients are summed in a fixed order (``_PairDot``; autograd's own backward of
    the gather accumulated them in a racing order, so two builds gave different vectors). Another
    CPU or torch version may still round differently.
    """
    config.validate()
    torch.manual_seed(seed)
    original = F.normalize(vectors.float(), dim=1)
    preserve = neighbour_pairs(original, config.rho, config.neighbours, config.block)
    preserve_before = _distance(original, preserve)
    fitted = original.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([fitted], lr=config.lr)
    for _ in range(config.steps):
        unit = F.normalize(fitted, dim=1)
        loss = (config.antonym_weight * _mean(F.relu(config.delta - _distance(unit, antonyms)))
                + config.synonym_weight * _mean(F.relu(_distance(unit, synonyms) - config.gamma))
                + config.preserve_weight * _mean(F.relu(_distance(unit, preserve) - preserve_before))
                + config.anchor_weight * (unit - original).pow(2).sum(dim=1).mean())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return F.normalize(fitted.detach(), dim=1)
