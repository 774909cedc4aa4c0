"""What a row's ``status`` means for robustness: the one definition every table and interval uses.

A store row's ``status`` is ``succeeded`` (the attack flipped the prediction), ``failed`` (originally
correct and survived the attack: robust), ``skipped`` (originally wrong, not attacked: not robust)
or ``spared``. A ``spared`` row is written by ``--union-only`` (``skip_broken``) for an example an
earlier attack of the union already broke: this attack never ran on it, so it says nothing about
this attack. Its per-attack Att Acc therefore leaves spared examples out of n, in the summary
(``metrics``) and over seeds (``uncertainty.robust_matrix``, where a spared cell is "not attacked"
like an example still pending) alike: robust share among the examples the attack attacked,
conditional on the earlier attacks having failed on them. Every table that prints such a number
says so with ``spared_note``. The union row (``union``) counts a spared example as finished.
"""

from __future__ import annotations

import pandas as pd

ROBUST_STATUS = "failed"  # originally correct and survived the attack: what attack_acc = failed / n counts
SPARED = "spared"  # status of an example skip_broken did not attack: an earlier attack of its union broke it
STATUSES = ("succeeded", "failed", "skipped", SPARED)


def attacked(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows this attack really ran on (or found wrong before attacking): every status but ``spared``."""
    return rows[rows["status"] != SPARED]


def robust_outcomes(status: pd.Series) -> pd.Series:
    """1.0 survived the attack, 0.0 broken or wrong before it, NaN not attacked (``spared``)."""
    robust = (status == ROBUST_STATUS).astype(float)
    return robust.mask(status == SPARED)


def clean_outcomes(status: pd.Series) -> pd.Series:
    """1.0 predicted correctly before the attack (succeeded or failed), 0.0 wrong (``skipped``), NaN ``spared``:
    Ori Acc per example, so a clean accuracy over seeds gets the same interval as an attack accuracy."""
    clean = status.isin(("succeeded", ROBUST_STATUS)).astype(float)
    return clean.mask(status == SPARED)


def spared_note(num_spared: int) -> str:
    """The label of a per-attack number that leaves spared examples out; '' when there are none."""
    return f"({num_spared} spared: not attacked, left out of n)" if num_spared else ""
