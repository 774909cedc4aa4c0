"""Union rows: robust only if every attack failed, over examples every attack finished; paired Δ on them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.tables import format_paper_table
from attack_workers.results.keys import union_row_key
from attack_workers.results.store import ResultStore
from attack_workers.results.uncertainty import mean_interval, paired_differences, robust_matrix, wilson_interval
from attack_workers.results.union import union_examples, with_union

UNION_AB = union_row_key("U", ["bert-attack", "pwws"])  # the union rows' attack key: union key + attack set


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
    union = summary.loc[UNION_AB]
    assert union["attack"] == "union" and union["attacks"] == "bert-attack,pwws"
    assert union["num_examples"] == 4 and union["num_failed"] == 1 and union["num_succeeded"] == 2
    assert union["attack_acc"] == pytest.approx(1 / 4)
    assert (union["attack_acc_low"], union["attack_acc_high"]) == pytest.approx(wilson_interval(1, 4))
    assert union["clean_acc"] == pytest.approx(3 / 4)
    assert union["pending_examples"] == 1  # e5
    assert summary.loc["kA", "attack_acc"] == pytest.approx(3 / 5)  # per-attack rows unchanged
    assert summary.loc["kB", "attack_acc"] == pytest.approx(2 / 4)
    assert (summary["attack"] == "union").sum() == 1  # a union of one attack (V) adds no row
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
    assert (row["attack"], row["attack_key"], row["status"]) == ("union", UNION_AB, "succeeded")
    # the initial prediction once, then each attack's queries beyond it: 1 + 6 + 4
    assert row["perturbed_text"] == "valid" and not row["audit_flagged"] and row["num_queries"] == 11


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
    differences = paired_differences(examples, [("m", "b")], attack_key=UNION_AB)
    np.testing.assert_array_equal(differences, [[1.0, 0.0, 0.0, 1.0]])
    interval = mean_interval(differences)
    half = t.ppf(0.975, 3) * math.sqrt(np.var([1, 0, 0, 1], ddof=1) / 4)  # one seed: over examples only
    assert interval.value == pytest.approx(0.5)
    assert (interval.low, interval.high) == pytest.approx((0.5 - half, min(1.0, 0.5 + half)))
    # the same under one attack only: B alone gives m = [1, 1, 1, 1], b = [0, 0, 1, 0]
    np.testing.assert_array_equal(paired_differences(examples, [("m", "b")], attack_key="kB"),
                                  [[1.0, 1.0, 0.0, 1.0]])


def test_unions_of_two_attack_sets_never_pool_or_pair(tmp_path, make_row):
    """Issue 29.1: c2 was attacked by two recipes, c1 by three, under one union key: two union keys.

    Before, both union rows had attack_key "U": pooled in one table row and paired into one Δ.
    """
    store = ResultStore(tmp_path)
    for checkpoint, attacks in (("c1", ("bert-attack", "textfooler", "pwws")), ("c2", ("bert-attack", "pwws"))):
        for attack in attacks:
            status = "succeeded" if attack == "textfooler" else "failed"  # only textfooler breaks e1
            store.write_results([make_row("e1", status, checkpoint=checkpoint, key=f"k-{attack}", attack=attack,
                                          union="U", protocol="strict")])
    union = store.load_summary().query("attack == 'union'").set_index("checkpoint_hash")
    assert union.loc["c1", "attack_key"] == union_row_key("U", ["pwws", "textfooler", "bert-attack"])
    assert union.loc["c2", "attack_key"] == UNION_AB != union.loc["c1", "attack_key"]
    assert (union.loc["c1", "attack_acc"], union.loc["c2", "attack_acc"]) == (0.0, 1.0)
    assert set(union["union_key"]) == {"U"}  # the per-attack rows' shared key is kept
    rows = with_union(store.load_examples())
    with pytest.raises(ValueError, match="a difference across keys compares two attacks"):
        paired_differences(rows[rows["attack"] == "union"], [("c1", "c2")])


def test_union_queries_and_perturbation_against_hand_computed_cases(make_row):
    """Issue 29.2: three attacks, each query count including its own initial prediction.

    e1 fails under all three, changing 10, 40 and 40 of its 100 words: the union's attempt is the
    largest, 40 (before: the first attack's, 10). e2 falls to pwws only (its 5 words count).
    Queries: 1 + (11 - 1) + (21 - 1) + (31 - 1) = 61, so the vda-paper Q Num of e1 is 60 = 10 + 20 + 30,
    the sum of the attacks' own Q Num (before: 63 - 1 = 62, two initial predictions too many).
    """
    import pandas as pd

    from attack_workers.results.metrics import vda_paper_metrics

    rows = []
    for attack, changed, queries in (("bert-attack", 10, 11), ("textfooler", 40, 21), ("pwws", 40, 31)):
        rows.append(make_row("e1", "failed", key=f"k-{attack}", attack=attack, union="U", words_changed=changed,
                             num_whitespace_words=100, num_queries=queries, perturbed_text=f"{attack} attempt"))
        rows.append(make_row("e2", "succeeded" if attack == "pwws" else "failed", key=f"k-{attack}", attack=attack,
                             union="U", words_changed=5 if attack == "pwws" else 0, num_whitespace_words=100,
                             num_queries=queries))
    rows = pd.DataFrame(rows)
    union = union_examples(rows).set_index("example_id")
    assert union.loc["e1", "words_changed"] == 40 and union.loc["e1", "perturbed_text"] == "textfooler attempt"
    assert union.loc["e1", "num_queries"] == 61 and union.loc["e2", "num_queries"] == 61
    metrics = vda_paper_metrics(union.reset_index())
    per_attack = [vda_paper_metrics(group)["avg_queries"] for _, group in rows.groupby("attack")]
    assert metrics["avg_queries"] == pytest.approx(sum(per_attack)) == pytest.approx(60.0)
    assert metrics["perturbed_pct"] == pytest.approx((40 + 5) / 2)


def test_a_union_no_example_of_which_is_finished_is_a_partial_row(tmp_path, make_row):
    """Issue 29.4: every example lacks one attack's row. Before: metrics={}, n NaN, printed "2.0", crashed."""
    store = ResultStore(tmp_path)
    store.write_results(planted(make_row, "c1", {"e1": ("failed", None)}) + planted(make_row, "c2", {
        "e1": ("failed", "failed"), "e2": ("failed", "failed")}))
    store.write_results(planted(make_row, "c1", {"e2": (None, "failed")}))
    store.record_plan("c1", "kA", ["e1", "e2"])
    store.record_plan("c1", "kB", ["e1", "e2"])
    union = store.load_summary().query("attack == 'union'").set_index("checkpoint_hash")
    assert union.loc["c1", "num_examples"] == 0 and union.loc["c1", "pending_examples"] == 2
    assert math.isnan(union.loc["c1", "attack_acc"]) and union.loc["c2", "num_examples"] == 2
    lines = [line.split("  ") for line in format_paper_table(store.load_summary()).splitlines()]
    union_lines = {line[1].strip(): line for line in lines if "union" in line}
    assert "0 (2 pending)" in [cell.strip() for cell in union_lines["c1"]]
    assert "2" in [cell.strip() for cell in union_lines["c2"]]


def test_union_only_per_attack_accuracy_has_one_definition(tmp_path, make_row):
    """Issue 29.3: --union-only: pwws did not attack e3 and e4 (bert-attack broke them: spared).

    Its Att Acc is robust / attacked = 1 / 2 in the summary and over seeds alike (before: 1/2 in the
    summary, 1/4 from robust_matrix, which scored spared examples as broken), and both say so.
    """
    store = ResultStore(tmp_path)
    store.write_results(planted(make_row, "c1", {"e1": ("failed", "failed"), "e2": ("failed", "succeeded"),
                                                 "e3": ("succeeded", "spared"), "e4": ("succeeded", "spared")}))
    summary = store.load_summary().set_index("attack_key")
    assert summary.loc["kB", "attack_acc"] == 0.5 and summary.loc["kB", "num_examples"] == 2
    assert summary.loc["kB", "num_spared"] == 2
    matrix = robust_matrix(store.load_examples(), ["c1"], attack_key="kB")
    assert mean_interval(matrix.to_numpy(), bounds=(0.0, 1.0)).value == 0.5
    assert summary.loc[UNION_AB, "attack_acc"] == 0.25 and summary.loc[UNION_AB, "num_examples"] == 4
    table = format_paper_table(store.load_summary())
    assert "2 (2 spared: not attacked, left out of n)" in table
