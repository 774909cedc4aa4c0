"""Transfer rows, rates and table (``attack_workers.results.transfer``), on hand-made rows."""

from __future__ import annotations

import json
import math

import pytest

from attack_workers.results.transfer import (
    TRANSFER_COLUMNS,
    TransferStore,
    format_transfer_table,
    transfer_summary,
    unseen_summary,
)
from attack_workers.results.uncertainty import wilson_interval


def row(example_id: str, correct: bool, fooled: bool, source: str = "s1", target: str = "t1", key: str = "k1",
        unseen: list[str] | None = None, finished_at: float = 1.0) -> dict:
    label = 1
    return {
        "source_hash": source, "source_run_id": f"run-{source}", "target_hash": target,
        "target_run_id": f"run-{target}", "target_path": f"/ckpt/{target}", "attack_key": key,
        "protocol": "strict", "attack": "bert-attack", "dataset": "reviews", "split": "dev",
        "example_id": example_id, "label": label, "original_text": f"text {example_id}", "original_text_b": None,
        "perturbed_text": f"txet {example_id}", "perturbed_text_b": None, "substitutions": "[]",
        "unseen_words": None if unseen is None else json.dumps(unseen),
        "target_clean_pred": label if correct else 1 - label, "target_adv_pred": 1 - label if fooled else label,
        "target_correct": correct, "fooled": fooled, "finished_at": finished_at,
    }


def test_rate_is_the_share_of_the_targets_correct_originals_that_the_text_fools(tmp_path):
    store = TransferStore(tmp_path)
    # 3 originals the target gets right (2 fooled), 2 it gets wrong (fooled or not: outside n)
    store.write([row("e1", True, True), row("e2", True, True), row("e3", True, False), row("e4", False, True),
                 row("e5", False, False)])
    (rec,) = transfer_summary(store.load()).to_dict("records")
    assert (rec["replayed"], rec["n"], rec["fooled"]) == (5, 3, 2)
    assert rec["rate"] == pytest.approx(2 / 3)
    assert (rec["rate_low"], rec["rate_high"]) == wilson_interval(2, 3)
    assert rec["self"] is False


def test_a_target_that_gets_every_original_wrong_has_no_rate(tmp_path):
    store = TransferStore(tmp_path)
    store.write([row("e1", False, True)])
    (rec,) = transfer_summary(store.load()).to_dict("records")
    assert rec["n"] == 0 and math.isnan(rec["rate"]) and math.isnan(rec["rate_low"])
    assert "nan" in format_transfer_table(transfer_summary(store.load()), unseen_summary(store.load()))


def test_a_rerun_replaces_rows_and_groups_stay_apart(tmp_path):
    store = TransferStore(tmp_path)
    store.write([row("e1", True, True, finished_at=1.0)])
    store.write([row("e1", True, False, finished_at=2.0), row("e2", True, False, finished_at=2.0)])
    store.write([row("e1", True, True, target="t2")])
    rows = store.load()
    assert len(rows) == 3
    summary = transfer_summary(rows).set_index("target_hash")
    assert summary.loc["t1", "fooled"] == 0 and summary.loc["t1", "n"] == 2  # the later run's rows
    assert summary.loc["t2", "fooled"] == 1
    with pytest.raises(ValueError, match="one \\(source, target, attack key\\)"):
        store.write([row("e1", True, True), row("e2", True, True, target="t2")])
    with pytest.raises(ValueError, match="differing columns: \\['fooled'\\]"):
        store.write([{c: v for c, v in row("e1", True, True).items() if c != "fooled"}])
    assert set(TRANSFER_COLUMNS) == set(row("e", True, True))


def test_unseen_share_counts_each_success_once_whatever_the_number_of_targets(tmp_path):
    store = TransferStore(tmp_path)
    for target in ("t1", "t2", "t3"):
        store.write([row("e1", True, True, target=target, unseen=["Zeugma"]),
                     row("e2", True, True, target=target, unseen=[]),
                     row("e3", True, True, target=target, unseen=["zeugma", "quux", "ZEUGMA"]),
                     row("e4", True, True, target=target, unseen=None)])  # substitutions not recorded
    (rec,) = unseen_summary(store.load()).to_dict("records")
    assert (rec["successes"], rec["known"], rec["with_unseen"]) == (4, 3, 2)
    assert rec["share"] == pytest.approx(2 / 3) and (rec["share_low"], rec["share_high"]) == wilson_interval(2, 3)
    assert rec["common_unseen"] == "zeugma (2), quux (1)"  # successes using the word, not occurrences


def test_table_prints_source_to_target_with_rate_interval_and_n(tmp_path):
    store = TransferStore(tmp_path)
    store.write([row("e1", True, True, target="s1", unseen=["zeugma"]), row("e2", True, True, target="s1", unseen=[])])
    store.write([row("e1", True, True), row("e2", True, False)])
    rows = store.load()
    lines = format_transfer_table(transfer_summary(rows), unseen_summary(rows)).splitlines()
    assert lines[0].split() == ["protocol", "attack", "source", "->", "target", "replayed", "n", "transfer", "rate",
                                "[95%", "CI]"]
    low, high = wilson_interval(2, 2)
    assert lines[2].split() == ["strict", "bert-attack", "run-s1", "(s1)", "(self)", "run-s1", "(s1)", "2", "2",
                                "1.000", f"[{low:.3f},", f"{high:.3f}]"]  # the self-check first
    assert lines[3].split()[-5:] == ["2", "2", "0.500", "[0.095,", "0.905]"]
    assert "never seen" in lines[5]
    assert lines[8].split()[4:] == ["2", "1", "0.500", "[0.095,", "0.905]", "zeugma", "(1)"]
    assert format_transfer_table(transfer_summary(store.load().iloc[:0]), unseen_summary(rows.iloc[:0])) \
        == "(no transfer results)"
