"""Every private TextAttack internal attack_workers reads, each behind one small function.

TextAttack 0.3.11 has no public way to (1) get ``GreedyWordSwapWIR``'s word-importance ranking
without its whole search (``_get_index_order``), or (2) charge an attack fewer victim-model
queries than its goal function counted: the count is ``GoalFunction.num_queries``, which
``SearchMethod.__call__`` copies into the search's final result. Nothing else in the project
touches these internals (``WordSwapMaskedLM``'s ``_language_model``/``_lm_tokenizer`` need no
adapter: ``BertAttackWordSwap`` keeps its own references to the MLM and tokenizer it is given).
``tests/attack_workers/attack/test_textattack_compat.py`` exercises each against the installed
TextAttack, so an upgrade that moves one fails there with a ``TextAttackCompatError`` naming it.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

TESTED_TEXTATTACK = "0.3.11"  # the release tests/attack_workers/attack/test_textattack_compat.py passed on


class TextAttackCompatError(RuntimeError):
    """A TextAttack internal this project reads has moved; the message names it and the fix."""


def word_importance_order(search: Any, text: Any) -> tuple[list[int], bool]:
    """(word indices of ``text``, most important first; whether the query budget ran out) from a
    ``GreedyWordSwapWIR`` wired into an ``Attack``; each word scored costs one query."""
    rank = _private(search, "_get_index_order", "GreedyWordSwapWIR._get_index_order")
    order, search_over = rank(text)
    return [int(i) for i in order], bool(search_over)


def refund_queries(goal_function: Any, count: int) -> None:
    """Take back ``count`` queries the goal function charged (e.g. candidates a sequential attack never tries)."""
    queries = _private(goal_function, "num_queries", "GoalFunction.num_queries")
    if not isinstance(queries, int) or not 0 <= count <= queries:
        raise TextAttackCompatError(f"cannot refund {count} of {queries!r} queries: GoalFunction.num_queries must be "
                                    f"an int at least the refund; {_FIX}")
    goal_function.num_queries = queries - count


_FIX = (f"this project was tested with textattack {TESTED_TEXTATTACK}: install it (pip install "
        f"textattack=={TESTED_TEXTATTACK}) or port attack_workers/attack/textattack_compat.py")


def _private(obj: Any, name: str, what: str) -> Any:
    try:
        return getattr(obj, name)
    except AttributeError:
        version = metadata.version("textattack")
        raise TextAttackCompatError(f"textattack {version} no longer has {what}; {_FIX}") from None
