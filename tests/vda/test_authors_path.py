"""The authors' VDA path (``vda.mode=code``) against a re-statement of their released forward pass.

The re-statement below is written from the description of RUCAIBox/VDA ``text_classifier.py``
(``EmbAdapterModel.defense`` and its training loop), not from this project's code: MLM logits on
the unmasked input, ``p = logits / logits.sum(-1)``, ``softmax(p + randn * variance)``, times the
classifier's own word-embedding matrix, through ``bert.embeddings(inputs_embeds=...)``, the
encoder, the pooler and ``classifier`` (no head dropout); loss ``CE + 0.5 KLDiv(mean)(q||p) +
0.5 KLDiv(mean)(p||q)``.
"""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from vda.augment import VirtualAugmenter
from vda.config import ConfigError, StrategyConfig, TrainConfig, VDAConfig, config_from_dict
from vda.losses import confidence_penalty
from vda.objective import StepContext, VDATerm, cross_entropy
from vda.strategies import get_strategy

SIGMA = 0.05


@pytest.fixture()
def batch(tokenizer):
    enc = tokenizer(["a gripping , beautifully acted film .", "dull ."], padding=True, return_tensors="pt")
    enc["labels"] = torch.tensor([1, 0])
    return dict(enc)


def _code_term(mlm, seed: int, **changes) -> VDATerm:
    cfg = dataclasses.replace(VDAConfig(mode="code", k=1), **changes).for_task(2)
    return VDATerm(VirtualAugmenter(mlm, cfg), cfg, torch.Generator().manual_seed(seed))


def _step(model, batch, term: VDATerm | None, params: StrategyConfig = StrategyConfig()) -> dict[str, float]:
    return get_strategy("plain")(model, batch, StepContext(params, term))


def _authors_forward(classifier, mlm, batch, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean logits, virtual logits) as the authors' code computes them; ``noise`` is [B, L, V]."""
    ids, mask, types = batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
    with torch.no_grad():
        scores = mlm(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
    probs = torch.softmax(scores / scores.sum(-1, keepdim=True) + noise, -1)
    word_embs = classifier.bert.embeddings.word_embeddings.weight
    embedded = classifier.bert.embeddings(input_ids=ids, token_type_ids=types, inputs_embeds=probs @ word_embs)
    extended = classifier.bert.get_extended_attention_mask(mask, ids.shape)
    hidden = classifier.bert.encoder(embedded, attention_mask=extended)[0]
    virtual = classifier.classifier(classifier.bert.pooler(hidden))
    clean = classifier(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
    return clean, virtual


def _authors_noise(batch, vocab: int, seed: int) -> torch.Tensor:
    """Their randn * variance, drawn here for the unpadded positions in row-major order (the project's draw
    order, so both sides see the same numbers); padding gets none, which the attention mask hides anyway."""
    mask = batch["attention_mask"].bool()
    noise = torch.zeros(*mask.shape, vocab)
    noise[mask] = torch.randn((int(mask.sum()), vocab), generator=torch.Generator().manual_seed(seed)) * SIGMA
    return noise


def test_code_mode_matches_the_authors_forward_loss_and_embedding_gradient(tiny_classifier, tiny_mlm, batch):
    tiny_classifier.eval()  # dropout off on both sides: the comparison is exact
    reference = _authors_forward(tiny_classifier, tiny_mlm, batch, _authors_noise(batch, tiny_mlm.config.vocab_size, 3))
    clean, virtual = reference
    kl = torch.nn.KLDivLoss()  # reduction "mean": element-wise, as their nn.KLDivLoss()
    expected = (F.cross_entropy(clean, batch["labels"])
                + 0.5 * kl(torch.log_softmax(virtual, -1), torch.softmax(clean, -1))
                + 0.5 * kl(torch.log_softmax(clean, -1), torch.softmax(virtual, -1)))
    expected.backward()
    their_grad = tiny_classifier.bert.embeddings.word_embeddings.weight.grad.clone()
    tiny_classifier.zero_grad()

    term = _code_term(tiny_mlm, seed=3)
    ours_clean, ours_virtual = term.logits(tiny_classifier, batch)
    assert torch.allclose(ours_clean, clean, atol=1e-5)
    assert torch.allclose(ours_virtual[0], virtual, atol=1e-5)
    tiny_classifier.zero_grad()
    logs = _step(tiny_classifier, batch, _code_term(tiny_mlm, seed=3))
    assert term.cfg.lam == pytest.approx(0.25)  # 0.5 / C for two classes
    assert logs["loss"] == pytest.approx(expected.item(), rel=1e-5)
    ours_grad = tiny_classifier.bert.embeddings.word_embeddings.weight.grad
    assert torch.allclose(ours_grad, their_grad, atol=1e-7, rtol=1e-4)


def _rows_outside_batch(batch, vocab: int) -> torch.Tensor:
    unseen = torch.ones(vocab, dtype=torch.bool)
    unseen[batch["input_ids"].unique()] = False
    return unseen


@pytest.mark.parametrize(("term_kind", "moves"), [("code", True), ("code-detached", False), ("sharp", False)])
def test_only_the_authors_gradient_moves_embedding_rows_no_batch_contains(tiny_classifier, tiny_mlm, batch,
                                                                          term_kind, moves):
    if term_kind == "sharp":
        cfg = VDAConfig(mode="sharp", sigma=1.0, k=1)
        term = VDATerm(VirtualAugmenter(tiny_mlm, cfg), cfg, torch.Generator().manual_seed(0))
    else:
        term = _code_term(tiny_mlm, seed=0, detach_embedding=term_kind == "code-detached")
    weight = tiny_classifier.bert.embeddings.word_embeddings.weight
    before = weight.detach().clone()
    optimizer = torch.optim.AdamW(tiny_classifier.parameters(), lr=1e-3, weight_decay=0.0)
    _step(tiny_classifier, batch, term)
    optimizer.step()
    unseen = _rows_outside_batch(batch, weight.shape[0])
    moved = (weight.detach()[unseen] - before[unseen]).abs().amax(dim=1) > 0
    assert bool(moved.all()) if moves else not bool(moved.any())
    if moves:  # AdamW's per-coordinate normalisation: every unseen row takes nearly the same step
        shift = weight.detach()[unseen] - before[unseen]
        shared = shift.mean(dim=0)
        assert (shift - shared).norm(dim=1).mean() < 0.1 * shared.norm()


def test_virtual_rows_skip_the_head_dropout_and_clean_rows_keep_it(tiny_classifier, tiny_mlm, batch):
    tiny_classifier.train()
    for module in tiny_classifier.bert.modules():  # encoder dropout off: only the head's dropout is random
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if hasattr(module, "dropout_prob"):  # attention-probability dropout of the SDPA path
            module.dropout_prob = 0.0
    tiny_classifier.dropout.p = 0.5
    runs = [_code_term(tiny_mlm, seed=5, noise=False).logits(tiny_classifier, batch) for _ in range(2)]
    assert not torch.allclose(runs[0][0], runs[1][0])  # clean rows: dropout draws differ
    assert torch.allclose(runs[0][1], runs[1][1])  # virtual rows: no dropout, no noise: identical


def test_without_noise_the_authors_virtual_token_is_the_mean_embedding(tiny_classifier, default_mlm, batch):
    """With a real MLM (logit sums near -1e5) p = logits / sum is ~1e-5 everywhere, so softmax(p) is uniform."""
    cfg = VDAConfig(mode="code", noise=False, k=1).for_task(2)
    weight = tiny_classifier.get_input_embeddings().weight
    virtual = VirtualAugmenter(default_mlm, cfg)(batch["input_ids"], batch["attention_mask"], 1, embedding=weight)
    mean = weight.detach().mean(dim=0)
    cosine = F.cosine_similarity(virtual[0].detach(), mean.expand_as(virtual[0]), dim=-1)
    assert float(cosine.min()) > 0.9999


def test_unset_lambda_follows_the_mode_and_the_class_count():
    assert VDAConfig(mode="sharp").lam == 1.0 and VDAConfig(mode="paper").lam == 1.0
    assert VDAConfig(mode="code").lam is None and VDAConfig(mode="code").enabled
    assert VDAConfig(mode="code").for_task(4).lam == pytest.approx(0.125)
    assert VDAConfig(mode="code", lam=0.0).for_task(2).lam == 0.0 and not VDAConfig(mode="code", lam=0.0).enabled
    assert VDAConfig(mode="code").sigma == SIGMA
    with pytest.raises(ConfigError, match="vda.detach_embedding: only the code mode"):
        TrainConfig(vda=VDAConfig(mode="sharp", detach_embedding=True)).validate()


def test_label_smoothing_and_confidence_penalty_shape_the_clean_loss():
    logits, labels = torch.tensor([[2.0, -1.0], [0.5, 0.2]]), torch.tensor([0, 1])
    smoothed = cross_entropy(logits, labels, StrategyConfig(label_smoothing=0.1))
    assert smoothed.item() == pytest.approx(F.cross_entropy(logits, labels, label_smoothing=0.1).item())
    p = torch.softmax(logits, -1)
    by_hand = ((p - 0.5) * (p.log() - torch.log(torch.tensor(0.5)))).sum(-1).mean()
    assert confidence_penalty(logits).item() == pytest.approx(by_hand.item())
    penalised = cross_entropy(logits, labels, StrategyConfig(confidence_penalty=0.25))
    assert penalised.item() == pytest.approx(F.cross_entropy(logits, labels).item() + 0.25 * by_hand.item())
    assert confidence_penalty(torch.zeros(3, 2)).item() == pytest.approx(0.0)


def test_the_authors_recipe_expands_and_keys_beside_it_win():
    cfg = config_from_dict({"recipe": "authors_cpu", "seed": 3, "vda": {"lam": 0.0}})
    assert (cfg.recipe, cfg.scheduler, cfg.shuffle, cfg.max_grad_norm, cfg.decay_all_parameters) == \
        ("authors_cpu", "cosine", False, 0.0, True)
    assert (cfg.seed, cfg.vda.mode, cfg.vda.sigma, cfg.vda.lam) == (3, "code", SIGMA, 0.0)
    gpu = config_from_dict({"recipe": "authors"})
    assert (gpu.model, gpu.lr, gpu.batch_size, gpu.epochs, gpu.data.max_length) == \
        ("bert-base-uncased", 1e-5, 12, 10, 256)
    with pytest.raises(ConfigError, match="recipe: 'nope' cannot be read"):
        config_from_dict({"recipe": "nope"})
