"""Union rows: robust only if every attack failed, over examples every attack finished; paired Δ on them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from attack_workers.results.store import ResultStore, format_paper_table
from attack_workers.results.uncertainty import mean_interval, paired_differences, wilson_interval
from attack_workers.results.union import union_examples, with_union


def planted(make_row, checkpoint, outcomes, union="U", protocol="vda-paper"):
    """Rows of two attacks A (key kA-<ckpt>... shared across checkpoints) and B: outcomes = {id: (A, B)}."""
    rows = []
    for example_id, statuses in outcomes.items():
        for attack, key, status in zip(("bert-attack", "pwws"), ("kA", "kB"), statuses):
            if status is not None:
                rows.append(make_row(example_id, status, checkpoint=checkpoint, key=key, attack=attack,
                                     union=union, protocol=protocol, audit_flagged=False))
    return rows


def test_union_of_a_planted_store(tmp_path, make_row):
    store = ResultStore(tmp_path)
    outcomes = {"e1": ("failed", "succeeded"),  # survives A, falls to B: broken in the union
                "e2": ("failed", "failed"),  # survives both: robust
                "e3": ("succeeded", "failed"),
                "e4": ("skipped", "skipped"),  # wrong before any attack
                "e5": ("failed", None)}  # B has not finished it: left out of the union, pending
    store.write_results(planted(make_row, "c1", outcomes))
    store.record_plan("c1", "kB", list(outcomes))
    # another evaluation of the same checkpoint (another union key) never joins this union
    store.write_results([make_row("e2", "succeeded", checkpoint="c1", key="kC", attack="textfooler", union="V")])
    summary = store.load_summary().set_index(["attack_key"])
    union = summary.loc["U"]
    assert union["attack"] == "union" and union["attacks"] == "bert-attack,pwws"
    assert union["num_examples"] == 4 and union["num_failed"] == 1 and union["num_succeeded"] == 2
    assert union["attack_acc"] == pytest.approx(1 / 4)
    assert (union["attack_acc_low"], union["attack_acc_high"]) == pytest.approx(wilson_interval(1, 4))
    assert union["clean_acc"] == pytest.approx(3 / 4)
    assert union["pending_examples"] == 1  # e5
    assert summary.loc["kA", "attack_acc"] == pytest.approx(3 / 5)  # per-attack rows unchanged
    assert summary.loc["kB", "attack_acc"] == pytest.approx(2 / 4)
    assert "V" not in summary.index  # a union of one attack adds no row
    assert summary.loc["kC", "attack"] == "textfooler"
    table = format_paper_table(store.load_summary())
    assert "union" in table and "pwws" in table


def test_union_keeps_the_first_unflagged_success_and_sums_queries(make_row):
    import pandas as pd

    rows = pd.DataFrame([
        make_row("e1", "succeeded", key="kA", attack="bert-attack", union="U", audit_flagged=True, num_queries=7,
                 perturbed_text="flagged"),
        make_row("e1", "succeeded", key="kB", attack="pwws", union="U", audit_flagged=False, num_queries=5,
                 perturbed_text="valid"),
    ])
    (row,) = union_examples(rows).to_dict("records")
    assert (row["attack"], row["attack_key"], row["status"]) == ("union", "U", "succeeded")
    assert row["perturbed_text"] == "valid" and not row["audit_flagged"] and row["num_queries"] == 12


def test_keys_of_different_attacks_never_mix(tmp_path, make_row):
    store = ResultStore(tmp_path)
    paths = store.write_results(planted(make_row, "c1", {"e1": ("failed", "succeeded"), "e2": ("failed", "failed")}))
    assert sorted(p.parent.name for p in paths) == ["kA", "kB"]  # one file per attack key
    assert store.done_example_ids("c1", "kA") == {"e1", "e2"}
    with pytest.raises(ValueError, match="share one checkpoint and attack key"):
        store.write_examples(planted(make_row, "c1", {"e3": ("failed", "failed")}))
    examples = store.load_examples()
    assert examples.groupby("attack_key")["attack"].nunique().max() == 1
    assert set(examples.groupby("attack_key")["attack"].first()) == {"bert-attack", "pwws"}


def test_paired_delta_of_union_rows_against_a_hand_computed_case(make_row):
    import pandas as pd
    from scipy.stats import t

    # method m / base b, one seed, four examples; union robust: m = [1, 0, 1, 1], b = [0, 0, 1, 0]
    method = planted(make_row, "m", {"e1": ("failed", "failed"), "e2": ("succeeded", "failed"),
                                     "e3": ("failed", "failed"), "e4": ("failed", "failed")})
    base = planted(make_row, "b", {"e1": ("failed", "succeeded"), "e2": ("failed", "succeeded"),
                                   "e3": ("failed", "failed"), "e4": ("succeeded", "succeeded")})
    examples = with_union(pd.DataFrame(method + base))
    differences = paired_differences(examples, [("m", "b")], attack_key="U")
    np.testing.assert_array_equal(differences, [[1.0, 0.0, 0.0, 1.0]])
    interval = mean_interval(differences)
    half = t.ppf(0.975, 3) * math.sqrt(np.var([1, 0, 0, 1], ddof=1) / 4)  # one seed: over examples only
    assert interval.value == pytest.approx(0.5)
    assert (interval.low, interval.high) == pytest.approx((0.5 - half, min(1.0, 0.5 + half)))
    # the same under one attack only: B alone gives m = [1, 1, 1, 1], b = [0, 0, 1, 0]
    np.testing.assert_array_equal(paired_differences(examples, [("m", "b")], attack_key="kB"),
                                  [[1.0, 1.0, 0.0, 1.0]])
