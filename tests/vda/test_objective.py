"""The VDA term on a tiny real BERT: gradients, padding, ablation switches, chunking."""

import dataclasses

import pytest
import torch

from vda.augment import VirtualAugmenter, compose_virtual_inputs
from vda.config import StrategyConfig, VDAConfig
from vda.objective import StepContext, VDATerm, cross_entropy
from vda.strategies import get_strategy


@pytest.fixture()
def batch(tokenizer):
    enc = tokenizer(["a gripping , beautifully acted film .", "dull ."], padding=True, return_tensors="pt")
    enc["labels"] = torch.tensor([1, 0])
    return dict(enc)


def _plain(model, batch, cfg: VDAConfig | None, mlm=None, seed=0):
    vda = VDATerm(VirtualAugmenter(mlm, cfg), cfg, torch.Generator().manual_seed(seed)) if cfg else None
    return get_strategy("plain")(model, batch, StepContext(StrategyConfig(), vda))


def test_gradient_reaches_the_classifier_and_never_the_mlm(tiny_classifier, tiny_mlm, batch):
    tiny_mlm.requires_grad_(True)  # even if someone unfreezes it, VDA must not backpropagate into it
    logs = _plain(tiny_classifier, batch, VDAConfig(k=2, mode="sharp", sigma=1.0), tiny_mlm)
    assert logs["vda"] > 0 and logs["loss"] == pytest.approx(logs["ce"] + logs["vda"], rel=1e-5)
    assert tiny_classifier.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny_mlm.parameters())


def test_without_vda_the_step_is_plain_cross_entropy(tiny_classifier, batch):
    tiny_classifier.eval()
    logs = _plain(tiny_classifier, batch, None)
    expected = cross_entropy(tiny_classifier(**{k: v for k, v in batch.items() if k != "labels"}).logits,
                             batch["labels"])
    assert set(logs) == {"loss", "ce"} and logs["loss"] == pytest.approx(expected.item())


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
    cfg = VDAConfig(mode=mode, k=1, noise=False)
    whole = VirtualAugmenter(tiny_mlm, cfg)(batch["input_ids"], batch["attention_mask"], 1)
    chunked = VirtualAugmenter(tiny_mlm, dataclasses.replace(cfg, chunk_positions=3))(
        batch["input_ids"], batch["attention_mask"], 1)
    assert whole.shape == (1, int(batch["attention_mask"].sum()), 32)
    assert torch.allclose(whole, chunked, atol=1e-6)


def test_ce_vda_and_no_noise_switches_change_the_loss(tiny_classifier, tiny_mlm, batch):
    tiny_classifier.eval()  # no dropout: differences come from the switches alone
    logs = {name: _plain(tiny_classifier, batch, cfg, tiny_mlm) for name, cfg in {
        "vda": VDAConfig(mode="sharp", sigma=2.0), "no_noise": VDAConfig(mode="sharp", noise=False),
        "ce": VDAConfig(mode="sharp", sigma=2.0, loss="ce")}.items()}
    assert logs["vda"]["vda"] != logs["no_noise"]["vda"]
    # CE-VDA's term is a cross-entropy (about log 2 for a random binary classifier), not a divergence
    assert abs(logs["ce"]["vda"] - 0.69) < 0.1 and logs["vda"]["vda"] < 0.1


@pytest.mark.parametrize("strategy", ["plain", "freelb", "smart", "smix"])
def test_lambda_weights_the_vda_term_once_in_every_strategy(tiny_classifier, tiny_mlm, batch, strategy):
    """Same seeds, lambda 1 vs 0.25: the logged term is unweighted and the loss differs by exactly 0.75 of it."""
    tiny_classifier.eval()  # no dropout: the two runs differ by lambda alone

    def run(lam: float) -> dict[str, float]:
        torch.manual_seed(0)  # FreeLB's init and SMix's ratio come from the global generator
        cfg = VDAConfig(k=1, mode="sharp", sigma=1.0, lam=lam)
        vda = VDATerm(VirtualAugmenter(tiny_mlm, cfg), cfg, torch.Generator().manual_seed(0))
        ctx = StepContext(StrategyConfig(name=strategy), vda, generator=torch.Generator().manual_seed(1))
        return get_strategy(strategy)(tiny_classifier, batch, ctx)

    full, quarter = run(1.0), run(0.25)
    assert full["vda"] == pytest.approx(quarter["vda"]) and full["vda"] > 0
    assert full["loss"] - quarter["loss"] == pytest.approx(0.75 * full["vda"], rel=1e-4, abs=1e-6)
