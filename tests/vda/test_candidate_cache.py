"""Sharp mode's candidate cache: the MLM scores a training example once, with no change to the result."""

import dataclasses

import pytest
import torch

from vda.augment import VirtualAugmenter
from vda.config import DataConfig, TrainConfig, VDAConfig
from vda.train import fit


@pytest.fixture()
def batch(tokenizer):
    return dict(tokenizer(["a gripping , beautifully acted film .", "dull ."], padding=True, return_tensors="pt"))


def _run(aug, ids, mask, keys=None):
    return aug(ids, mask, 2, generator=torch.Generator().manual_seed(0), keys=keys)


def test_cached_candidates_give_the_same_virtual_embeddings_without_running_the_mlm(tiny_mlm, batch, monkeypatch):
    cfg = VDAConfig(mode="sharp", k=2, sigma=1.0, chunk_positions=3)
    ids, mask, keys = batch["input_ids"], batch["attention_mask"], [7, 3]
    reference = VirtualAugmenter(tiny_mlm, dataclasses.replace(cfg, cache_mb=0))
    aug = VirtualAugmenter(tiny_mlm, cfg)
    first = _run(aug, ids, mask, keys)
    assert len(aug.cache) == 2 and aug.cache.bytes > 0
    monkeypatch.setattr(aug, "encoder", lambda **_: pytest.fail("the MLM ran for cached examples"))
    assert torch.equal(first, _run(reference, ids, mask)) and torch.equal(_run(aug, ids, mask, keys), first)
    # another batch order: each example's own entries are used (equal up to the MLM's batch-dependent rounding)
    flipped = _run(aug, ids.flip(0), mask.flip(0), keys[::-1])
    assert torch.allclose(flipped, _run(reference, ids.flip(0), mask.flip(0)), atol=1e-6)


def test_a_full_cache_scores_the_rest_with_the_mlm_and_says_so(tiny_mlm, batch, caplog):
    cfg = VDAConfig(mode="sharp", k=2, sigma=1.0)
    aug = VirtualAugmenter(tiny_mlm, cfg)
    aug.cache.max_bytes = 1  # nothing fits
    out = _run(aug, batch["input_ids"], batch["attention_mask"], [0, 1])
    expected = _run(VirtualAugmenter(tiny_mlm, dataclasses.replace(cfg, cache_mb=0)), batch["input_ids"],
                    batch["attention_mask"])
    assert torch.equal(out, expected) and len(aug.cache) == 0 and "cache is full" in caplog.text
    assert VirtualAugmenter(tiny_mlm, VDAConfig(mode="paper")).cache is None  # [n, V] scores are not cached


def test_training_with_the_cache_matches_training_without_it(tmp_path, tiny_model_dir, monkeypatch):
    mlm_batches = []
    scored_chunks = VirtualAugmenter._scored_chunks
    monkeypatch.setattr(VirtualAugmenter, "_scored_chunks",
                        lambda self, *a: mlm_batches.append(1) or scored_chunks(self, *a))
    cfg = TrainConfig(model=tiny_model_dir, mlm=tiny_model_dir, lr=1e-3, batch_size=16, epochs=2, eval_test=False,
                      data=DataConfig(dataset="mr", max_train_examples=48, max_eval_examples=16, max_length=32),
                      vda=VDAConfig(k=2, mode="sharp", sigma=1.0))
    cached = fit(cfg, tmp_path / "cached", progress=False).history
    assert len(mlm_batches) == 3  # 48 examples in batches of 16: the MLM ran in the first epoch only
    uncached = fit(dataclasses.replace(cfg, vda=dataclasses.replace(cfg.vda, cache_mb=0)), tmp_path / "plain",
                   progress=False).history
    assert len(mlm_batches) == 3 + 6
    for a, b in zip(cached, uncached, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["dev_acc"] == b["dev_acc"]
