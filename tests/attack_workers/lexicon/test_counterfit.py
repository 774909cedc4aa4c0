"""Counter-fitting on toy vectors: antonyms are pushed apart, synonyms pulled together, the rest kept."""

from __future__ import annotations

import pytest
import torch

from attack_workers.lexicon.counterfit import CounterFitConfig, counter_fit, neighbour_pairs


def _vectors():
    # good, bad, great: good/bad close (distributional), good/great moderately close; cat and kitten
    # very close and unconstrained: the preservation term must keep them together.
    return torch.tensor([[1.0, 0.2, 0.0, 0.0], [0.9, 0.5, 0.0, 0.0], [0.6, -0.6, 0.3, 0.0],
                         [0.0, 0.0, 1.0, 0.1], [0.0, 0.05, 1.0, 0.12]])


def _cos(v, i, j):
    return float(v[i] @ v[j])


def test_antonyms_repel_synonyms_attract_and_unconstrained_neighbours_stay():
    before = torch.nn.functional.normalize(_vectors(), dim=1)
    after = counter_fit(_vectors(), synonyms=torch.tensor([[0, 2]]), antonyms=torch.tensor([[0, 1]]),
                        config=CounterFitConfig(steps=200, lr=0.05))
    assert _cos(before, 0, 1) > 0.9 and _cos(after, 0, 1) < 0.1  # delta = 1: pushed to cosine <= ~0
    assert _cos(after, 0, 2) > _cos(before, 0, 2) + 0.3
    assert _cos(after, 3, 4) >= _cos(before, 3, 4) - 1e-3
    assert torch.allclose(after.norm(dim=1), torch.ones(5))


def test_counter_fitting_is_deterministic():
    args = (_vectors(), torch.tensor([[0, 2]]), torch.tensor([[0, 1]]), CounterFitConfig(steps=20))
    assert torch.equal(counter_fit(*args), counter_fit(*args))


def test_neighbour_pairs_finds_pairs_within_rho_once():
    pairs = neighbour_pairs(_vectors(), rho=0.2, limit=4, block=2)
    assert sorted(map(tuple, pairs.tolist())) == [(0, 1), (3, 4)]


def test_invalid_config_is_refused():
    with pytest.raises(ValueError, match="steps=0"):
        CounterFitConfig(steps=0).validate()


def _realistic_inputs(num_words: int = 4000, dim: int = 96, seed: int = 0):
    """Thousands of words, clustered vectors, WordNet-like pairs: many pairs share a word (hubs), as
    the real constraints do, so the gradient rows of one word come from many pairs at once."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(200, dim, generator=generator)
    vectors = centres[torch.randint(0, 200, (num_words,), generator=generator)] + 0.7 * torch.randn(
        num_words, dim, generator=generator)
    hubs = torch.randint(0, num_words // 10, (6000,), generator=generator)  # a tenth of the words in most pairs
    others = torch.randint(0, num_words, (6000,), generator=generator)
    keep = hubs != others
    pairs = torch.stack([torch.minimum(hubs, others), torch.maximum(hubs, others)], dim=1)[keep]
    return vectors, pairs[:3000], pairs[3000:]


def _content_hash(vectors: torch.Tensor) -> str:
    import hashlib

    return hashlib.sha256(vectors.numpy().tobytes()).hexdigest()[:16]


def test_counter_fitting_is_bit_reproducible_with_two_threads():
    """Two builds give one content hash, as the worker's own lexicon build relies on. Fails on the
    code before _PairDot: autograd's backward of the gather ``unit[pairs[:, k]]`` accumulated the
    rows of pairs sharing a word in a racing order with two threads (hashes differed run to run)."""
    vectors, synonyms, antonyms = _realistic_inputs()
    config = CounterFitConfig(steps=8)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        hashes = {_content_hash(counter_fit(vectors, synonyms, antonyms, config)) for _ in range(3)}
        torch.set_num_threads(1)
        single = _content_hash(counter_fit(vectors, synonyms, antonyms, config))
    finally:
        torch.set_num_threads(threads)
    assert len(hashes) == 1, f"three builds, {len(hashes)} different content hashes"
    assert hashes == {single}, "one thread and two threads built different vectors"
