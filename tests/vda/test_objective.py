"""The VDA objective on a tiny real BERT: gradients, padding, ablation switches, chunking."""

import dataclasses

import pytest
import torch

from vda.augment import VirtualAugmenter, compose_virtual_inputs
from vda.config import VDAConfig
from vda.objective import plain_loss, vda_loss


@pytest.fixture()
def batch(tokenizer):
    enc = tokenizer(["a gripping , beautifully acted film .", "dull ."], padding=True, return_tensors="pt")
    enc["labels"] = torch.tensor([1, 0])
    return dict(enc)


def test_gradient_reaches_the_classifier_and_never_the_mlm(tiny_classifier, tiny_mlm, batch):
    tiny_mlm.requires_grad_(True)  # even if someone unfreezes it, VDA must not backpropagate into it
    aug = VirtualAugmenter(tiny_mlm, VDAConfig(k=2, mode="sharp", sigma=1.0))
    loss, parts = vda_loss(tiny_classifier, batch, aug, aug.cfg, torch.Generator().manual_seed(0))
    loss.backward()
    assert parts["reg"] > 0
    assert tiny_classifier.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny_mlm.parameters())


def test_lambda_zero_is_plain_fine_tuning(tiny_classifier, tiny_mlm, batch):
    tiny_classifier.eval()
    cfg = VDAConfig(lam=0.0)
    loss, parts = vda_loss(tiny_classifier, batch, VirtualAugmenter(tiny_mlm, cfg), cfg)
    assert set(parts) == {"ce"}
    assert torch.allclose(loss, plain_loss(tiny_classifier, batch)[0])


def test_padding_keeps_the_real_embedding_and_real_positions_are_virtual(tiny_classifier, tiny_mlm, batch):
    aug = VirtualAugmenter(tiny_mlm, VDAConfig(k=3, mode="paper"))
    virtual = aug(batch["input_ids"], batch["attention_mask"], 3)
    real = tiny_classifier.get_input_embeddings()(batch["input_ids"])
    composed = compose_virtual_inputs(real, virtual, batch["attention_mask"])
    pad = ~batch["attention_mask"].bool()
    assert pad.any()
    assert torch.equal(composed[:, pad], real[pad].expand(3, -1, -1))
    assert not torch.allclose(composed[:, ~pad], real[~pad].expand(3, -1, -1))


@pytest.mark.parametrize("mode", ["paper", "code", "sharp"])
def test_chunking_does_not_change_the_result(tiny_mlm, batch, mode):
    cfg = VDAConfig(mode=mode, k=2, sigma=0.5)
    whole = VirtualAugmenter(tiny_mlm, cfg)(batch["input_ids"], batch["attention_mask"], 2,
                                            generator=torch.Generator().manual_seed(3))
    chunked_cfg = dataclasses.replace(cfg, chunk_positions=3)
    chunked = VirtualAugmenter(tiny_mlm, chunked_cfg)(batch["input_ids"], batch["attention_mask"], 2,
                                                      generator=torch.Generator().manual_seed(3))
    assert whole.shape == (2, int(batch["attention_mask"].sum()), 32)
    if mode == "sharp":  # noise is drawn per chunk, so only the noise-free result is comparable
        cfg, chunked_cfg = (dataclasses.replace(c, noise=False) for c in (cfg, chunked_cfg))
        whole = VirtualAugmenter(tiny_mlm, cfg)(batch["input_ids"], batch["attention_mask"], 1)
        chunked = VirtualAugmenter(tiny_mlm, chunked_cfg)(batch["input_ids"], batch["attention_mask"], 1)
        assert torch.allclose(whole, chunked, atol=1e-6)
    else:
        assert whole.shape == chunked.shape


def test_ce_vda_and_no_noise_switches_change_the_loss(tiny_classifier, tiny_mlm, batch):
    tiny_classifier.eval()  # no dropout: differences come from the switches alone
    losses = {}
    for name, cfg in {"vda": VDAConfig(mode="sharp", sigma=2.0), "no_noise": VDAConfig(mode="sharp", noise=False),
                      "ce": VDAConfig(mode="sharp", sigma=2.0, loss="ce")}.items():
        losses[name] = vda_loss(tiny_classifier, batch, VirtualAugmenter(tiny_mlm, cfg), cfg,
                                torch.Generator().manual_seed(0))[1]
    assert losses["vda"]["reg"] != losses["no_noise"]["reg"]
    # CE-VDA's term is a cross-entropy (about log 2 for a random binary classifier), not a divergence
    assert abs(losses["ce"]["reg"] - 0.69) < 0.1 and losses["vda"]["reg"] < 0.1
