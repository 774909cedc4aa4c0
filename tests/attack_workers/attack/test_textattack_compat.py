"""The private TextAttack internals behind ``attack_workers.attack.textattack_compat`` work on the installed TextAttack.

When one of these fails after an upgrade, the error names the moved internal: port
attack_workers/attack/textattack_compat.py or keep textattack at the version pyproject pins.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from attack_workers.attack.offline import import_textattack
from attack_workers.attack.textattack_compat import TextAttackCompatError, refund_queries, word_importance_order

import_textattack()
from textattack import Attack  # noqa: E402
from textattack.goal_functions import UntargetedClassification  # noqa: E402
from textattack.models.wrappers import ModelWrapper  # noqa: E402
from textattack.search_methods import GreedyWordSwapWIR  # noqa: E402
from textattack.shared import AttackedText  # noqa: E402
from textattack.transformations import WordSwap  # noqa: E402


class _KeywordModel(ModelWrapper):
    """Positive exactly when the text has the word 'good': the decisive word is known."""

    def __init__(self) -> None:
        self.model = torch.nn.Identity()

    def __call__(self, texts: list[str]) -> torch.Tensor:
        return torch.tensor([[0.0, 1.0] if "good" in t.split() else [1.0, 0.0] for t in texts])


class _Swap(WordSwap):
    def _get_replacement_words(self, word: str) -> list[str]:
        return ["fine"]


class _RefundingSearch(GreedyWordSwapWIR):
    def perform_search(self, initial_result):
        refund_queries(self.goal_function, 1)
        return initial_result


def _attack(search: GreedyWordSwapWIR) -> tuple[Attack, object]:
    goal = UntargetedClassification(_KeywordModel())
    attack = Attack(goal, [], _Swap(), search)
    initial, _ = goal.init_attack_example(AttackedText("a good film"), 1)  # one query: the initial prediction
    return attack, initial


def test_word_importance_order_ranks_the_decisive_word_first_and_charges_one_query_per_word():
    search = GreedyWordSwapWIR(wir_method="unk")
    attack, initial = _attack(search)
    order, search_over = word_importance_order(search, initial.attacked_text)
    assert order[0] == 1 and sorted(order) == [0, 1, 2] and not search_over
    assert attack.goal_function.num_queries == 1 + 3


def test_refunded_queries_reach_the_search_result():
    search = _RefundingSearch(wir_method="unk")
    attack, initial = _attack(search)
    attack.goal_function.num_queries = 5
    assert search(initial).num_queries == 4  # SearchMethod.__call__ copies the goal function's count
    with pytest.raises(TextAttackCompatError, match="cannot refund 9 of 4"):
        refund_queries(attack.goal_function, 9)


def test_a_moved_internal_fails_naming_it():
    with pytest.raises(TextAttackCompatError, match=r"no longer has GreedyWordSwapWIR\._get_index_order.*0\.3\.11"):
        word_importance_order(SimpleNamespace(), "a text")
