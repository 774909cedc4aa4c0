import torch

from vda.config import VDAConfig
from vda.losses import symmetric_kl, vda_regulariser


def test_symmetric_kl_is_symmetric_zero_on_equal_and_matches_definition():
    torch.manual_seed(0)
    a, b = torch.randn(5, 3), torch.randn(5, 3)
    assert torch.allclose(symmetric_kl(a, b), symmetric_kl(b, a))
    assert symmetric_kl(a, a).abs() < 1e-7
    p, q = a.softmax(-1), b.softmax(-1)
    expected = ((p * (p / q).log()).sum(-1) + (q * (q / p).log()).sum(-1)).mean()
    assert torch.allclose(symmetric_kl(a, b), expected, atol=1e-6)
    assert symmetric_kl(a, b) > 0


def test_regulariser_averages_over_k_and_ce_variant_uses_labels():
    torch.manual_seed(0)
    clean, virtual, labels = torch.randn(4, 2), torch.randn(3, 4, 2), torch.tensor([0, 1, 1, 0])
    reg = vda_regulariser(clean, virtual, labels, VDAConfig(k=3))
    assert torch.allclose(reg, torch.stack([symmetric_kl(clean, v) for v in virtual]).mean())
    ce = vda_regulariser(clean, virtual, labels, VDAConfig(k=3, loss="ce"))
    expected = torch.stack([torch.nn.functional.cross_entropy(v, labels) for v in virtual]).mean()
    assert torch.allclose(ce, expected)
