"""Greedy word-importance search that tries candidates in the MLM's rank order, as BERT-Attack does.

TextAttack's ``GreedyWordSwapWIR`` evaluates all candidates for a word as one batch, and when
some of them flip the label it keeps the one with the highest similarity score; its query
count charges the whole batch. The BERT-Attack script the VDA authors ran (bert_robust.py) tries
the candidates one by one in the MLM's rank order and stops at the first one that changes the
prediction. ``FirstSuccessGreedyWIR`` keeps the batched evaluation (it is what makes the attack
fast) but picks that first flipping candidate and charges only the queries the sequential script
would have made: the candidates up to and including it.

"First" must mean first in the transformation's order, and TextAttack loses that order:
``Attack.filter_transformations`` returns the surviving candidates sorted by their *text*. So a
transformation tags each candidate with its rank (``tag_rank``) and the search restores the order
(``in_rank_order``) before it looks for the first flip; without that, the alphabetically first
flip would win and Q Num, the adversarial text, its audit and every ADA set built from it would
be wrong (Att Acc would not).
"""

from __future__ import annotations

from typing import Any

from attack_workers.attack.offline import import_textattack
from attack_workers.attack.textattack_compat import refund_queries, word_importance_order

import_textattack()
from textattack.goal_function_results import GoalFunctionResultStatus  # noqa: E402
from textattack.search_methods import GreedyWordSwapWIR  # noqa: E402

RANK_ATTR = "candidate_rank"


def tag_rank(text: Any, rank: int) -> Any:
    """Record on a candidate ``AttackedText`` its rank among its word's candidates (0 = best)."""
    text.attack_attrs[RANK_ATTR] = rank
    return text


def in_rank_order(candidates: list[Any]) -> list[Any]:
    """Candidates sorted back into their transformation's rank order; untagged ones keep their place, last."""
    return sorted(candidates, key=lambda t: t.attack_attrs.get(RANK_ATTR, float("inf")))


class FirstSuccessGreedyWIR(GreedyWordSwapWIR):
    """``[UNK]`` leave-one-out word ranking, then one greedy swap per word in that order."""

    def __init__(self, unk_token: str = "[UNK]") -> None:
        super().__init__(wir_method="unk", unk_token=unk_token)

    def perform_search(self, initial_result: Any) -> Any:
        original = initial_result.attacked_text
        index_order, search_over = word_importance_order(self, original)
        current = initial_result
        for index in index_order:
            if search_over:
                break
            candidates = in_rank_order(self.get_transformations(current.attacked_text, original_text=original,
                                                                indices_to_modify=[index]))
            if not candidates:
                continue
            results, search_over = self.get_goal_results(candidates)
            flips = [i for i, r in enumerate(results) if r.goal_status == GoalFunctionResultStatus.SUCCEEDED]
            if flips:
                first = flips[0]
                # The sequential script would not have queried the candidates after the first flip.
                refund_queries(self.goal_function, len(results) - (first + 1))
                return results[first]
            best = max(results, key=lambda r: r.score)  # ties: the better-ranked candidate
            if best.score > current.score:
                current = best
        return current
