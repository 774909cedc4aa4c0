"""Metric definitions of both protocols against values computed by hand on fixed rows."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from attack_workers.results.metrics import METRIC_COLUMNS, textattack_metrics, vda_paper_metrics
from attack_workers.results.uncertainty import wilson_interval

# status, num_queries (initial query included), num_words, num_whitespace_words, words_changed, seconds
ROWS = [
    ("succeeded", 20, 10, 12, 2, 1.0),
    ("succeeded", 30, 8, 8, 1, 2.0),
    ("failed", 40, 10, 10, 4, 3.0),
    ("failed", 50, 5, 6, 0, 4.0),
    ("skipped", 1, 20, 20, 0, 0.5),
    ("skipped", 1, 7, 8, 0, 0.5),
]


@pytest.fixture()
def rows() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=["status", "num_queries", "num_words", "num_whitespace_words",
                                       "words_changed", "seconds"])


def test_textattack_definitions(rows):
    m = textattack_metrics(rows)
    assert m["num_examples"] == 6
    assert (m["num_succeeded"], m["num_failed"], m["num_skipped"]) == (2, 2, 2)
    assert m["clean_acc"] == pytest.approx(4 / 6)
    assert m["attack_acc"] == pytest.approx(2 / 6)
    assert m["attack_success_rate"] == pytest.approx(2 / 4)
    assert m["avg_queries"] == pytest.approx((20 + 30 + 40 + 50) / 4)  # initial query included, skipped excluded
    assert m["perturbed_pct"] == pytest.approx((100 * 2 / 10 + 100 * 1 / 8) / 2)  # successes only
    assert m["avg_words"] == pytest.approx(60 / 6)
    assert m["seconds"] == pytest.approx(11.0)


def test_vda_paper_definitions(rows):
    m = vda_paper_metrics(rows)
    assert m["clean_acc"] == pytest.approx(4 / 6)
    assert m["attack_acc"] == pytest.approx(2 / 6)  # robust examples / all examples
    assert m["attack_success_rate"] == pytest.approx(2 / 4)
    assert m["avg_queries"] == pytest.approx((19 + 29 + 39 + 49) / 4)  # initial query not counted, failures included
    # every originally-correct example, failed attacks included, over whitespace words
    assert m["perturbed_pct"] == pytest.approx((100 * 2 / 12 + 100 * 1 / 8 + 100 * 4 / 10 + 0) / 4)
    assert m["avg_words"] == pytest.approx(64 / 6)


@pytest.mark.parametrize("summarize", [textattack_metrics, vda_paper_metrics])
def test_accuracies_come_with_wilson_intervals_over_the_examples(rows, summarize):
    m = summarize(rows)
    assert set(m) == set(METRIC_COLUMNS)
    assert (m["attack_acc_low"], m["attack_acc_high"]) == wilson_interval(2, 6)  # 2 robust of 6
    assert (m["clean_acc_low"], m["clean_acc_high"]) == wilson_interval(4, 6)  # 4 originally correct of 6
    assert m["attack_acc_low"] < m["attack_acc"] < m["attack_acc_high"]


def test_undefined_ratios_are_nan(rows):
    only_skipped = rows[rows["status"] == "skipped"]
    m = textattack_metrics(only_skipped)
    assert m["clean_acc"] == 0 and m["attack_acc"] == 0
    assert math.isnan(m["attack_success_rate"]) and math.isnan(m["avg_queries"]) and math.isnan(m["perturbed_pct"])
    no_success = rows[rows["status"] != "succeeded"]
    assert math.isnan(textattack_metrics(no_success)["perturbed_pct"])
    assert vda_paper_metrics(no_success)["perturbed_pct"] == pytest.approx((40 + 0) / 2)


def test_unknown_status_is_an_error(rows):
    rows.loc[0, "status"] = "maximized"
    with pytest.raises(ValueError, match="unknown status"):
        textattack_metrics(rows)
