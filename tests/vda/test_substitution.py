"""What each substitution mode's p' looks like on the real default MLM (the 'known trap')."""


import pytest
import torch

from vda.augment import VirtualAugmenter
from vda.config import VDAConfig
from vda.substitution import (discrete_tokens, distribution_stats, sample_substitution, score_positions)

SENTENCES = ["the acting is good and the story is moving .", "a terrible , boring movie ."]


@pytest.fixture(scope="module")
def positions(default_mlm, tokenizer):
    enc = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = default_mlm(**enc).logits
    mask = enc["attention_mask"].bool()
    return logits[mask], enc["input_ids"][mask]


def _stats(positions, cfg, vocab=30522):
    logits, ids = positions
    sub = sample_substitution(score_positions(logits, ids, cfg), cfg, torch.Generator().manual_seed(0))
    return distribution_stats(sub, ids, vocab)


@pytest.mark.parametrize("mode", ["paper", "code"])
def test_literal_modes_are_almost_uniform(positions, mode):
    stats = _stats(positions, VDAConfig(mode=mode, sigma=1e-2))
    assert stats["entropy_ratio"] > 0.999  # H(p') / log V: indistinguishable from uniform
    assert stats["original_mass"] < 1e-3  # the input token gets about 1/V of the mass


def test_sharp_mode_concentrates_on_plausible_substitutes(positions):
    stats = _stats(positions, VDAConfig(mode="sharp", sigma=1.0, top_k=32))
    assert stats["entropy_ratio"] < 0.35  # at most log(33)/log(30522) = 0.34
    assert stats["original_mass"] > 0.1  # thousands of times its uniform share (1/30522)


def test_sharp_mode_noise_and_temperature_move_mass(positions):
    cold = _stats(positions, VDAConfig(mode="sharp", sigma=0.0, temperature=0.5))
    hot = _stats(positions, VDAConfig(mode="sharp", sigma=0.0, temperature=4.0))
    noisy = _stats(positions, VDAConfig(mode="sharp", sigma=3.0))
    quiet = _stats(positions, VDAConfig(mode="sharp", sigma=0.0))
    assert cold["original_mass"] > quiet["original_mass"] > hot["original_mass"]
    assert noisy["original_mass"] < quiet["original_mass"]


def test_argmax_without_noise_reproduces_tokens_whose_top_prediction_is_themselves(positions):
    logits, ids = positions
    cfg = VDAConfig(mode="sharp", noise=False)
    chosen = discrete_tokens(sample_substitution(score_positions(logits, ids, cfg), cfg), "argmax")
    self_top = logits.argmax(-1) == ids
    assert self_top.float().mean() > 0.5  # the unmasked MLM mostly predicts its input
    assert torch.equal(chosen[self_top], ids[self_top])


def test_sample_draws_tokens_from_the_candidates(positions):
    logits, ids = positions
    cfg = VDAConfig(mode="sharp", sigma=1.0, top_k=8)
    scored = score_positions(logits, ids, cfg)
    tokens = discrete_tokens(sample_substitution(scored, cfg), "sample", torch.Generator().manual_seed(0))
    assert all(t in row for t, row in zip(tokens.tolist(), scored.indices.tolist()))


def test_virtual_embedding_of_sharp_mixture_stays_near_the_token(default_mlm, tokenizer):
    enc = tokenizer(SENTENCES[:1], return_tensors="pt")
    E = default_mlm.get_input_embeddings().weight
    real = E[enc["input_ids"][0]]
    cos = {}
    for mode, sigma in (("paper", 1e-2), ("sharp", 1.0)):
        cfg = VDAConfig(mode=mode, sigma=sigma)
        virtual = VirtualAugmenter(default_mlm, cfg)(enc["input_ids"], enc["attention_mask"], 1)[0]
        cos[mode] = torch.nn.functional.cosine_similarity(virtual, real, dim=-1).mean().item()
    mean_cos = torch.nn.functional.cosine_similarity(
        VirtualAugmenter(default_mlm, VDAConfig(mode="paper"))(enc["input_ids"], enc["attention_mask"], 1)[0],
        E.mean(0, keepdim=True), dim=-1).mean().item()
    assert mean_cos > 0.99  # the literal mode collapses to the mean embedding
    assert cos["sharp"] > 0.6 > cos["paper"]
