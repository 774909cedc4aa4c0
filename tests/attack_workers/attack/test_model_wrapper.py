"""The classifier seam: dynamic padding, and a memo that runs the model once per distinct truncated input."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict

import pytest
import torch

from attack_workers.attack.model_wrapper import DynamicPaddingModelWrapper
from vda.checkpoint import load_checkpoint

LONG = " ".join(["the cast is excellent and the script is sharp , a wonderful film ."] * 20)  # ~280 tokens


@pytest.fixture(scope="module")
def review_model(review_checkpoint):
    model, tokenizer, _ = load_checkpoint(review_checkpoint)
    return model, tokenizer


def _replace_word(text: str, index: int, word: str) -> str:
    words = text.split()
    words[index] = word
    return " ".join(words)


def test_a_change_beyond_the_window_reuses_the_texts_logits_without_a_forward(review_model):
    model, tokenizer = review_model
    wrapper = DynamicPaddingModelWrapper(model, tokenizer, max_length=64)
    inside, beyond = _replace_word(LONG, 3, "dreadful"), _replace_word(LONG, 200, "dreadful")
    logits = wrapper([LONG, beyond, inside])
    assert wrapper.forward_inputs == 2  # LONG and `beyond` are one input once truncated at 64 tokens
    assert torch.equal(logits[0], logits[1]) and not torch.equal(logits[0], logits[2])
    again = wrapper([beyond, _replace_word(LONG, 150, "[UNK]")])
    assert wrapper.forward_inputs == 2 and torch.equal(again[0], logits[0]) and torch.equal(again[1], logits[0])
    fresh = DynamicPaddingModelWrapper(model, tokenizer, max_length=64, memo_size=0)
    torch.testing.assert_close(fresh([LONG, beyond, inside]), logits, atol=1e-5, rtol=1e-5)
    assert fresh.forward_inputs == 2  # without a memo, duplicates within one call still run once


def test_the_memo_is_bounded_and_keeps_the_most_recent(review_model):
    model, tokenizer = review_model
    wrapper = DynamicPaddingModelWrapper(model, tokenizer, max_length=64, memo_size=2)
    wrapper(["a dull film", "wonderful", "sharp"])
    assert len(wrapper._memo) == 2
    wrapper(["a dull film"])  # evicted: runs again
    assert wrapper.forward_inputs == 4


def test_an_attack_on_a_long_text_is_the_same_with_and_without_the_memo(worker, review_checkpoint, tmp_path):
    """Same outcome, adversarial text and query count; far fewer forward passes than queries (the model
    ran once per query before), and the cross-call memo saves more than in-call de-duplication alone."""
    from attack_workers.runtime.evaluation import EvalConfig, plan_evaluation
    from attack_workers.attack.protocols import AttackParams
    from attack_workers.results.store import ResultStore
    from attack_workers.runtime.worker import WorkerConfig

    config = EvalConfig(store=str(tmp_path), protocol="textattack", params=AttackParams(max_candidates=8),
                        shard_size=100, num_examples=1)
    (shard,) = plan_evaluation([str(review_checkpoint)], config, WorkerConfig(), ResultStore(config.store)).shards
    shard = dataclasses.replace(shard, examples=[dataclasses.replace(shard.examples[0], text_a=LONG)])
    outcomes = {}
    for memo_size in (50_000, 0):
        worker._checkpoint_hash = None  # reload: a fresh wrapper, and a fresh TextAttack query cache
        attack = worker._attack_for(shard.target)
        worker._wrapper.memo_size = memo_size
        label = int(worker._wrapper([LONG]).argmax())  # attack the prediction, so the attack is not skipped
        worker._wrapper.forward_inputs = 0
        result = attack.attack(OrderedDict(text=LONG), label)
        outcomes[memo_size] = (type(result).__name__, result.perturbed_result.attacked_text.text,
                               result.perturbed_result.num_queries, worker._wrapper.forward_inputs)
    worker._checkpoint_hash = None  # the next user of the session worker gets a default wrapper
    with_memo, without = outcomes[50_000], outcomes[0]
    assert with_memo[:3] == without[:3]
    assert with_memo[2] > 100 and with_memo[3] < with_memo[2] * 0.6 and with_memo[3] <= without[3], outcomes
