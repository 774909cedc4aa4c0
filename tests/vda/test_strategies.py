"""Each training strategy alone and with VDA, on real MR sentences and a tiny BERT."""

import pytest
import torch

from vda.augment import VirtualAugmenter
from vda.config import DataConfig, StrategyConfig, VDAConfig
from vda.data import load_task
from vda.objective import StepContext, VDATerm
from vda.strategies import STRATEGIES, get_strategy
from vda.strategies.freelb import ascend, initial_delta
from vda.strategies.smix import mix_hook


@pytest.fixture(scope="module")
def mr_batch(tokenizer):
    examples = load_task(DataConfig(dataset="mr", max_train_examples=8)).splits["train"]
    enc = tokenizer([e.text_a for e in examples], padding=True, truncation=True, max_length=48, return_tensors="pt")
    enc["labels"] = torch.tensor([e.label for e in examples])
    return dict(enc)


@pytest.mark.parametrize("with_vda", [False, True])
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_strategy_trains_and_reports_its_terms(name, with_vda, tiny_classifier, tiny_mlm, mr_batch):
    cfg = VDAConfig(mode="sharp", sigma=1.0, k=2)
    vda = VDATerm(VirtualAugmenter(tiny_mlm, cfg), cfg) if with_vda else None
    ctx = StepContext(StrategyConfig(name=name, adv_max_norm=1.0), vda)
    opt = torch.optim.AdamW(tiny_classifier.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in tiny_classifier.parameters()]
    for _ in range(2):
        opt.zero_grad()
        logs = get_strategy(name)(tiny_classifier, mr_batch, ctx)
        opt.step()
    expected = {"plain": "ce", "freelb": "adv_ce", "smart": "smart", "smix": "mix_ce"}[name]
    assert expected in logs and torch.isfinite(torch.tensor(logs["loss"]))
    assert ("vda" in logs) == with_vda
    assert any(not torch.equal(b, p) for b, p in zip(before, tiny_classifier.parameters()))


def test_unknown_strategy_names_the_registry():
    with pytest.raises(KeyError, match="STRATEGIES has no 'freelbb'; did you mean 'freelb'"):
        get_strategy("freelbb")


def test_freelb_delta_starts_scaled_and_respects_its_norm_bound():
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    delta = initial_delta(mask, 8, 0.1, torch.float32)
    assert torch.all(delta[mask == 0] == 0)
    assert torch.all(delta.flatten(1).norm(dim=1) <= 0.1 + 1e-6)  # |u| <= 1 per entry, scaled by 0.1/sqrt(n*d)
    grad = torch.randn(2, 4, 8)
    stepped = ascend(delta, grad, mask, lr=5.0, max_norm=0.3)
    assert torch.all(stepped.flatten(1).norm(dim=1) <= 0.3 + 1e-6)
    unbounded = ascend(delta, grad, mask, lr=5.0, max_norm=0.0)
    assert torch.all(unbounded.flatten(1).norm(dim=1) > 4.0)
    assert torch.all(unbounded[mask == 0] == 0)


def test_smart_regulariser_is_zero_without_noise(tiny_classifier, mr_batch):
    tiny_classifier.eval()  # identical dropout-free passes
    ctx = StepContext(StrategyConfig(name="smart", smart_noise_var=0.0, smart_step=0.0), None)
    assert get_strategy("smart")(tiny_classifier, mr_batch, ctx)["smart"] == pytest.approx(0.0, abs=1e-7)
    ctx = StepContext(StrategyConfig(name="smart", smart_noise_var=1e-2, smart_step=1e-1), None)
    assert get_strategy("smart")(tiny_classifier, mr_batch, ctx)["smart"] > 0


def test_smix_mixes_cls_at_the_chosen_layer(tiny_classifier, mr_batch):
    tiny_classifier.eval()
    layer = tiny_classifier.bert.encoder.layer[0]
    seen = {}

    def recorder(key):
        def hook(module, inputs, output):
            seen[key] = output[0] if isinstance(output, tuple) else output  # returns None: output unchanged
        return hook

    capture = layer.register_forward_hook(recorder("plain"))
    tiny_classifier(input_ids=mr_batch["input_ids"], attention_mask=mr_batch["attention_mask"])
    capture.remove()
    perm = torch.roll(torch.arange(8), 1)
    mixing = layer.register_forward_hook(mix_hook(0.3, perm))
    capture = layer.register_forward_hook(recorder("mixed"))
    tiny_classifier(input_ids=mr_batch["input_ids"], attention_mask=mr_batch["attention_mask"])
    mixing.remove(), capture.remove()
    plain, mixed = seen["plain"], seen["mixed"]
    assert torch.allclose(mixed[:, 0], 0.3 * plain[:, 0] + 0.7 * plain[perm, 0], atol=1e-6)
    assert torch.equal(mixed[:, 1:], plain[:, 1:])
