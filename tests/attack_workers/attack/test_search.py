"""The search keeps the best-ranked candidate that flips, and charges the queries up to it.

TextAttack hands the search its candidates sorted by text, so here the MLM's rank order
(mango, zebra, apple) and the alphabetical order (apple, mango, zebra) disagree on which flip is
first: BERT-Attack keeps "zebra" after two queries, the alphabetical order "apple" after one.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

from attack_workers.attack.offline import import_textattack

import_textattack()
from textattack import Attack  # noqa: E402
from textattack.goal_functions import UntargetedClassification  # noqa: E402
from textattack.models.wrappers import ModelWrapper  # noqa: E402
from textattack.transformations import WordSwap  # noqa: E402

from attack_workers.attack.search import FirstSuccessGreedyWIR, in_rank_order, tag_rank  # noqa: E402

FLIPPING = {"zebra", "apple"}


class KeywordModel(ModelWrapper):
    """Positive while "good" is there; any flipping word makes it negative."""

    def __init__(self) -> None:
        self.model = None

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = []
        for text in texts:
            words = set(text.split())
            positive = 0.1 if words & FLIPPING else 0.9 if "good" in words else 0.6
            out.append([1 - positive, positive])
        return np.array(out)


class RankedSwap(WordSwap):
    """Fixed candidates for "good", best first, tagged with their rank as the real transformation does."""

    def __init__(self, ranked: list[str]) -> None:
        super().__init__()
        self.ranked = ranked

    def _get_transformations(self, current_text, indices_to_modify):
        return [tag_rank(current_text.replace_word_at_index(i, w), rank)
                for i in indices_to_modify if current_text.words[i] == "good"
                for rank, w in enumerate(self.ranked)]


def attack_with(ranked: list[str]):
    goal = UntargetedClassification(KeywordModel())
    attack = Attack(goal, [], RankedSwap(ranked), FirstSuccessGreedyWIR())
    return attack.attack(OrderedDict(text="a good film"), 1)


def test_the_best_ranked_flip_wins_and_queries_stop_there():
    result = attack_with(["mango", "zebra", "apple"])
    assert result.perturbed_result.attacked_text.words == ["a", "zebra", "film"]
    # Charged: mango and zebra; only zebra when it is the sole candidate.
    assert result.num_queries - attack_with(["zebra"]).num_queries == 1


def test_rank_order_is_restored_from_the_tags_and_untagged_candidates_go_last():
    from textattack.shared import AttackedText

    text = AttackedText("a good film")
    tagged = [tag_rank(text.replace_word_at_index(1, w), r) for r, w in enumerate(["mango", "zebra", "apple"])]
    untagged = text.replace_word_at_index(1, "kiwi")
    alphabetical = sorted([*tagged, untagged], key=lambda t: t.text)
    assert [t.words[1] for t in in_rank_order(alphabetical)] == ["mango", "zebra", "apple", "kiwi"]


@pytest.mark.parametrize("ranked", [["apple", "zebra"], ["zebra", "apple"]])
def test_either_order_keeps_its_first(ranked):
    assert attack_with(ranked).perturbed_result.attacked_text.words[1] == ranked[0]
