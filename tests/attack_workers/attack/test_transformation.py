"""BERT-Attack candidates, the dynamic-padding model wrapper and the local sentence encoder."""

from __future__ import annotations

import pytest
import torch

from attack_workers.attack.offline import import_textattack

import_textattack()
from textattack.shared import AttackedText  # noqa: E402

from attack_workers.attack.transformation import BertAttackWordSwap  # noqa: E402


@pytest.fixture(scope="module")
def mlm():
    from vda.mlm import load_mlm

    return load_mlm("default")


def test_candidates_are_ranked_whole_words_within_k(mlm):
    model, tokenizer = mlm
    swap = BertAttackWordSwap(model, tokenizer, max_candidates=8)
    text = AttackedText("the acting was terrible and the plot was dull")
    index = text.words.index("terrible")
    candidates = swap._get_transformations(text, [index])
    words = [c.words[index] for c in candidates]
    assert 0 < len(words) <= 8
    assert "terrible" not in words and all(w.isalpha() for w in words)
    assert all(c.words[:index] == text.words[:index] and c.words[index + 1:] == text.words[index + 1:]
               for c in candidates)
    # Same order as the full masked-LM forward pass (the head is applied to one position only).
    enc = tokenizer(text.text, return_tensors="pt")
    position = enc.input_ids[0].tolist().index(tokenizer.convert_tokens_to_ids("terrible"))
    with torch.no_grad():
        top = torch.topk(model(**enc).logits[0, position], 8).indices.tolist()
    expected = [t for t in tokenizer.convert_ids_to_tokens(top) if t.isalpha() and t != "terrible"]
    assert words == expected


def test_subword_combinations_are_capped_and_ranked_by_perplexity(mlm):
    model, tokenizer = mlm
    ids = tokenizer.convert_tokens_to_ids
    firsts, seconds = ids(["play", "walk", "talk", "jump"]), ids(["##ing", "##ed", "##er", "##s"])
    top_ids = torch.tensor([firsts + [0] * 4, seconds + [0] * 4])  # [positions, K]

    def perplexity(token_ids: list[int]) -> float:  # the original BERT-Attack: the MLM on the combination alone
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([token_ids])).logits[0]
        return torch.nn.functional.cross_entropy(logits, torch.tensor(token_ids)).exp().item()

    swap = BertAttackWordSwap(model, tokenizer, max_candidates=8, subword_top=4, subword_keep=24)
    words = swap._ranked_combinations(top_ids)
    combos = sorted(((a, b) for a in firsts for b in seconds), key=perplexity)
    assert words == [tokenizer.convert_tokens_to_string(tokenizer.convert_ids_to_tokens(c)) for c in combos]
    assert words != [f"{a}{b}" for a in ("play", "walk", "talk", "jump") for b in ("ing", "ed", "er", "s")]

    capped = BertAttackWordSwap(model, tokenizer, max_candidates=8, subword_top=2, subword_keep=3)
    capped = capped._ranked_combinations(top_ids)
    assert sorted(capped) == ["played", "playing", "walking"]  # top 2 x 2, first 3 combinations kept


def test_long_words_do_not_explode(mlm):
    """textattack 0.3.11 scores the K**n product of sub-token candidates (48**4 = 5.3M for one word); here
    each multi-token word costs one MLM pass over at most subword_keep combinations, and the text's
    encoder pass is shared by all its words."""
    model, tokenizer = mlm
    swap = BertAttackWordSwap(model, tokenizer, max_candidates=48)
    text = AttackedText("an unbelievably overwrought melodrama")
    assert len(tokenizer.tokenize("unbelievably")) >= 4
    multi_token = sum(len(tokenizer.tokenize(w)) > 1 for w in text.words)
    scored, encoder_passes = [], []
    hooks = [model.register_forward_hook(lambda m, args, kwargs, out: scored.append(kwargs["input_ids"].shape[0]),
                                         with_kwargs=True),
             model.bert.register_forward_hook(lambda *_: encoder_passes.append(1))]
    try:
        for index in range(len(text.words)):
            swap._get_transformations(text, [index])
    finally:
        for hook in hooks:
            hook.remove()
    assert len(scored) == multi_token >= 2 and max(scored) <= swap.subword_keep
    assert len(encoder_passes) == 1 + len(scored)  # one for the text, one inside each combination pass


def test_dynamic_padding_matches_padding_to_max_length(review_checkpoint, pair_checkpoint):
    from textattack.models.wrappers import HuggingFaceModelWrapper

    from attack_workers.attack.model_wrapper import DynamicPaddingModelWrapper
    from vda.checkpoint import load_checkpoint

    inputs = {
        review_checkpoint: ["a dull film", "the cast is excellent and the script is sharp", "wonderful"],
        pair_checkpoint: [("the film was released last summer", "the movie came out last summer"),
                          ("the actor won an award", "tickets were cheap")],
    }
    for checkpoint, texts in inputs.items():
        model, tokenizer, _ = load_checkpoint(checkpoint)
        ours = DynamicPaddingModelWrapper(model, tokenizer, max_length=512, batch_size=2)(texts)
        stock = HuggingFaceModelWrapper(model, tokenizer)(texts)
        assert ours.shape == stock.shape == (len(texts), 2)
        torch.testing.assert_close(ours, stock.float(), atol=1e-4, rtol=1e-4)


def test_sentence_encoder_encodes_each_sentence_once():
    from attack_workers.attack.sentence_encoder import LocalSentenceEncoder, load_sentence_model

    model = load_sentence_model("default")
    calls = []
    encode = model.encode
    model.encode = lambda sentences, **kw: calls.append(list(sentences)) or encode(sentences, **kw)
    constraint = LocalSentenceEncoder(model, threshold=0.2)
    embeddings = constraint.encode(["a good film", "a bad film", "a good film"])
    assert calls == [["a good film", "a bad film"]]
    torch.testing.assert_close(embeddings[0], embeddings[2])
    assert constraint.model is constraint  # TextAttack's _sim_score calls self.model.encode
    original = AttackedText("a good film")
    swapped = original.replace_word_at_index(1, "bad")
    swapped.attack_attrs["newly_modified_indices"] = {1}
    swapped.attack_attrs["last_transformation"] = object()
    kept = constraint._check_constraint_many([swapped], original)
    assert len(kept) == 1 and 0.2 <= swapped.attack_attrs["similarity_score"] < 1


@pytest.mark.parametrize("candidate, original, allowed", [
    ("film", "movie", True), ("2", "Kate", False), ("11", "8", False), ("unpredictable", "predictable", False),
    ("consistent", "inconsistent", False), ("dislike", "like", False), ("unpredictably", "predictable", True),
    ("hasn", "has", False), ("not", "best", False), ("never", "not", True),
])
def test_numbers_and_negated_forms_are_never_swapped(candidate, original, allowed):
    from attack_workers.attack.transformation import _allowed_swap

    assert _allowed_swap(candidate, original) is allowed


def test_a_spelled_together_non_word_candidate_is_rejected(mlm):
    from attack_workers.lexicon.relations import is_english_word

    model, tokenizer = mlm
    ids = tokenizer.convert_tokens_to_ids
    top_ids = torch.tensor([ids(["and", "perpetual"]) + [0] * 6, ids(["##ly"]) + [0] * 7])
    lenient = BertAttackWordSwap(model, tokenizer, max_candidates=8, subword_top=2)
    strict = BertAttackWordSwap(model, tokenizer, max_candidates=8, subword_top=2, is_word=is_english_word)
    assert "andly" in lenient._ranked_combinations(top_ids)  # any alphabetic string passes as "one word"
    real = strict._ranked_combinations(top_ids)
    assert "perpetually" in real and "andly" not in real
