"""Robustness metrics from per-example rows, under each protocol's definitions.

Input: the rows of one (checkpoint, protocol, attack parameters) group, with the columns of
``attack_workers.results.store.EXAMPLE_COLUMNS``. ``status`` is ``succeeded`` (the prediction was
flipped), ``failed`` (originally correct, survived the attack), ``skipped`` (originally wrong,
not attacked) or ``spared`` (``--union-only``: not attacked by this attack, an earlier one broke it).
n counts every row but the spared ones (``attack_workers.results.outcomes``: the one definition),
and ``num_spared`` says how many were left out. ``num_queries`` is the victim-model query count of
the attack, the initial prediction included (a union row's: the initial prediction once, plus every
attack's queries beyond it, ``attack_workers.results.union``). Accuracies are fractions (the paper
prints 0.868); percentages are 0-100.

``textattack``: exactly ``textattack.metrics`` (0.3.11) on the same results.
    clean_acc            (n - skipped) / n
    attack_acc           failed / n
    attack_success_rate  succeeded / (succeeded + failed)
    avg_queries          mean num_queries over succeeded + failed (initial query included)
    perturbed_pct        mean over *succeeded* of 100 * words_changed / num_words
    avg_words            mean num_words over all n (TextAttack's word split, all text columns)

``vda-paper``: the VDA authors' BERT-Attack script (bert_robust.py), paper section 5.1.3. Its
search stops at the first flipping candidate and its ``num_queries`` charges candidates only up to
that one (``attack_workers.attack.search``), as the script's one-by-one loop does.
    clean_acc            (n - skipped) / n
    attack_acc           failed / n                      ("robust examples / all examples")
    attack_success_rate  succeeded / (succeeded + failed)
    avg_queries          mean (num_queries - 1) over succeeded + failed (initial query not counted)
    perturbed_pct        mean over succeeded + failed of 100 * words_changed / num_whitespace_words
    avg_words            mean num_whitespace_words over all n (the script splits on spaces; for
                         sentence pairs both sentences count, although only the second is attacked)

A ratio with an empty denominator (e.g. no successful attack) is NaN.

Both protocols add the 95 % Wilson interval over the n examples (``attack_workers.results.uncertainty``)
of the two accuracies: ``clean_acc_low``/``clean_acc_high`` and ``attack_acc_low``/``attack_acc_high``.
At n = 1000 and Att Acc 0.2 it is still about ±0.025, the size of many of the paper's gaps.

``PROTOCOL_METRICS`` names each protocol's definitions (``strict`` counts as ``vda-paper``): the store
reads them by the protocol name its rows record. Every protocol counts the validity audit's flags
(``attack_workers.lexicon.audit``) the same way: ``audit_summary``, the shares of its successes
that the audit flags.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from attack_workers.results.outcomes import STATUSES, attacked as attacked_rows
from attack_workers.results.uncertainty import wilson_interval

METRIC_COLUMNS = ("num_examples", "num_spared", "clean_acc", "clean_acc_low", "clean_acc_high", "attack_acc",
                  "attack_acc_low", "attack_acc_high", "attack_success_rate", "avg_queries", "perturbed_pct",
                  "avg_words", "num_succeeded", "num_failed", "num_skipped", "seconds")
FLAG_SHARES = {"audit_antonym": "flagged_antonym_share", "audit_polarity_flip": "flagged_polarity_share",
               "audit_nonword": "flagged_nonword_share", "audit_hole": "flagged_hole_share",
               "audit_pos_change": "flagged_pos_share", "audit_inflection_change": "flagged_inflection_share",
               "audit_stopword_swap": "flagged_stopword_share"}
"""Each flag column of the audit (``attack_workers.lexicon.audit``) and the name of its share in a summary."""
FLAG_COLUMNS = tuple(FLAG_SHARES)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def _mean(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else math.nan


def _counts(rows: pd.DataFrame) -> dict[str, float]:
    unknown = set(rows["status"]) - set(STATUSES)
    if unknown:
        raise ValueError(f"rows have unknown status values {sorted(unknown)}; expected {STATUSES}")
    spared = len(rows) - len(attacked_rows(rows))
    rows = attacked_rows(rows)
    n = len(rows)
    succeeded = int((rows["status"] == "succeeded").sum())
    failed = int((rows["status"] == "failed").sum())
    skipped = int((rows["status"] == "skipped").sum())
    clean_low, clean_high = wilson_interval(n - skipped, n)
    attack_low, attack_high = wilson_interval(failed, n)
    return {
        "num_examples": n,
        "num_spared": spared,
        "clean_acc": _ratio(n - skipped, n),
        "clean_acc_low": clean_low,
        "clean_acc_high": clean_high,
        "attack_acc": _ratio(failed, n),
        "attack_acc_low": attack_low,
        "attack_acc_high": attack_high,
        "attack_success_rate": _ratio(succeeded, succeeded + failed),
        "num_succeeded": succeeded,
        "num_failed": failed,
        "num_skipped": skipped,
        "seconds": float(rows["seconds"].sum()),
    }


def textattack_metrics(rows: pd.DataFrame) -> dict[str, float]:
    """TextAttack's definitions (``AttackSuccessRate``, ``AttackQueries``, ``WordsPerturbed``)."""
    counts, rows = _counts(rows), attacked_rows(rows)
    attacked = rows[rows["status"] != "skipped"]
    succeeded = rows[rows["status"] == "succeeded"]
    return {
        **counts,
        "avg_queries": _mean(attacked["num_queries"]),
        "perturbed_pct": _mean(100.0 * succeeded["words_changed"] / succeeded["num_words"]),
        "avg_words": _mean(rows["num_words"]),
    }


def vda_paper_metrics(rows: pd.DataFrame) -> dict[str, float]:
    """The VDA authors' definitions: averages over every originally-correct example."""
    counts, rows = _counts(rows), attacked_rows(rows)
    attacked = rows[rows["status"] != "skipped"]
    return {
        **counts,
        "avg_queries": _mean(attacked["num_queries"] - 1),
        "perturbed_pct": _mean(100.0 * attacked["words_changed"] / attacked["num_whitespace_words"]),
        "avg_words": _mean(rows["num_whitespace_words"]),
    }


PROTOCOL_METRICS: dict[str, Callable[[pd.DataFrame], dict[str, float]]] = {
    "textattack": textattack_metrics,
    "vda-paper": vda_paper_metrics,
    "strict": vda_paper_metrics,  # vda-paper's search and counting, stricter word rules
}
"""Each protocol of ``attack_workers.attack.protocols.PROTOCOLS`` and its definitions (a test checks that
both name the same protocols)."""


def audit_summary(rows: Any) -> dict[str, float]:
    """Shares over one checkpoint's *succeeded* attacks: what a reader of its Att Acc must know.

    ``flagged_share`` is the headline (any flag); ``flagged_meaning_share`` counts antonym swaps and
    polarity flips, ``flagged_grammar_share`` part-of-speech and inflection changes, and each flag
    has its own share. ``hole_share`` is the share of all substitutions in successes that had no
    vector and so passed the word filter unchecked (``hole_substitutions`` of ``substituted_words``:
    ``analysis.tables.hole_shares`` pools them per dataset). Rows written before a flag existed give NaN.
    """
    succeeded = rows[rows["status"] == "succeeded"]
    names = ["num_flagged", "flagged_share", "flagged_meaning_share", "flagged_grammar_share",
             *FLAG_SHARES.values(), "hole_share", "hole_substitutions", "substituted_words"]
    if any(c not in rows for c in (*FLAG_COLUMNS, "audit_flagged")) or succeeded["audit_flagged"].isna().any():
        return dict.fromkeys(names, math.nan)
    n = len(succeeded)

    def share(*columns: str) -> float:
        hit = succeeded[list(columns)].astype(bool).any(axis=1)
        return float(hit.sum()) / n if n else math.nan

    substituted = int(succeeded["words_changed"].sum())
    return {
        "num_flagged": int(succeeded["audit_flagged"].astype(bool).sum()),
        "flagged_share": share("audit_flagged"),
        "flagged_meaning_share": share("audit_antonym", "audit_polarity_flip"),
        "flagged_grammar_share": share("audit_pos_change", "audit_inflection_change"),
        **{name: share(column) for column, name in FLAG_SHARES.items()},
        "hole_share": float(succeeded["audit_unknown_pairs"].sum()) / substituted if substituted else math.nan,
        "hole_substitutions": int(succeeded["audit_unknown_pairs"].sum()),
        "substituted_words": substituted,
    }
