"""Readers' verdicts: the join (never onto another text), the reader-adjusted Att Acc against a case
computed by hand, its coverage by simulation, the paired Δ, and ``summary --verdicts``."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

from attack_workers.cli import main
from attack_workers.results.store import ResultStore
from analysis.verdicts import (Verdicts, _base_group, acceptance_interval, adjusted_accuracy, adjusted_difference,
                               join_verdicts, method_groups, read_verdicts, reader_table)


def test_adjusted_accuracy_by_hand():
    # n = 100: 60 robust, 30 successes, 10 wrong before the attack; 4 of 10 read successes accepted (s = 30).
    # adjusted = 0.60 + (1 - 0.4) * 0.30 = 0.78. Y = 60 ones, 30 of 0.6, 10 zeros: sum of squares about 0.78 is
    # 60 * 0.0484 + 30 * 0.0324 + 10 * 0.6084 = 9.96, so the example term is 9.96 / 99 / 100 = 0.00100606.
    # Agresti-Coull centre (4 + 1.920729) / (10 + 3.841459) = 0.427753, c(1-c) = 0.244780:
    # validity term 0.244780 * 0.30 / 100 = 0.00073434; verdict term 0.09 * 0.244780 / 10 * 20 / 29 = 0.00151933.
    # Total 0.00325973 (SE 0.057094); Satterthwaite df = 0.00325973^2 / (0.00100606^2/99 + 0.00073434^2/99
    # + 0.00151933^2/9) = 39.04, t = 2.0226: half-width 0.11548.
    robust = np.array([[1.0] * 60 + [0.0] * 40])
    success = np.array([[0.0] * 60 + [1.0] * 30 + [0.0] * 10])
    result = adjusted_accuracy(robust, success, Verdicts(accepted=4, read=10, successes=30))
    assert (result.value, result.low, result.high) == pytest.approx((0.78, 0.66452, 0.89548), abs=1e-4)
    assert (result.raw, result.read, result.accepted, result.num_examples) == (pytest.approx(0.6), 10, 4, 100)
    assert acceptance_interval(Verdicts(4, 10, 30))[0] == 0.4
    every_success_read = adjusted_accuracy(robust, success, Verdicts(12, 30, 30))
    assert every_success_read.high - every_success_read.low < result.high - result.low  # no verdict-sample term
    assert math.isnan(adjusted_accuracy(robust, success, Verdicts(0, 0, 30)).value)  # no verdicts, no estimate


def _coverage(rng: np.random.Generator, n: int = 300, robust: float = 0.76, success: float = 0.20,
              acceptance: float = 0.4, read: int = 20, seeds: int = 1, replicates: int = 1000) -> tuple[float, float]:
    """(coverage of the population's adjusted Att Acc, mean width) over simulated checkpoints and readers.

    Each example is robust, broken or wrong before the attack with the given shares; each success is
    acceptable to a reader with probability ``acceptance``; the reader reads ``read`` successes drawn
    without replacement. The target is robust + (1 - acceptance) * success.
    """
    target = robust + (1 - acceptance) * success
    hits, widths = 0, []
    for _ in range(replicates):
        draw = rng.random((seeds, n))
        is_robust = (draw < robust).astype(float)
        is_success = ((draw >= robust) & (draw < robust + success)).astype(float)
        valid = rng.random((seeds, n)) < acceptance
        successes = np.flatnonzero(is_success.ravel())
        chosen = rng.choice(successes, min(read, len(successes)), replace=False)
        verdicts = Verdicts(int(valid.ravel()[chosen].sum()), len(chosen), len(successes))
        result = adjusted_accuracy(is_robust, is_success, verdicts)
        hits += result.low <= target <= result.high
        widths.append(result.high - result.low)
    return hits / replicates, float(np.mean(widths))


def test_adjusted_interval_covers_by_simulation():
    """Nominal 95 % intervals cover the population's adjusted Att Acc at 92-98 % (run with -s for the table).

    The MR study's shapes: 300 examples, Att Acc about 0.76, success share 0.20, 20 read successes
    per method and attack, acceptance 0.25-0.4 there; also near 0 and 1, 50 verdicts, 1000 examples
    and three seeds.
    """
    rng = np.random.default_rng(5)
    cases = {"MR study: n 300, 20 read, acceptance 0.4": {},
             "acceptance 0.1": {"acceptance": 0.1}, "acceptance 0.9": {"acceptance": 0.9},
             "50 read": {"read": 50}, "n 1000, 50 read": {"n": 1000, "read": 50},
             "3 seeds": {"seeds": 3}, "few successes (0.05), acceptance 0.95": {"success": 0.05, "acceptance": 0.95}}
    lines = ["case | coverage | mean width", "---|---|---"]
    for name, kwargs in cases.items():
        coverage, width = _coverage(rng, **kwargs)
        lines.append(f"{name} | {coverage:.1%} | {width:.3f}")
        assert 0.92 <= coverage <= 0.98, lines[-1]
    print("\n" + "\n".join(lines))


def test_paired_difference_by_hand():
    # one seed pair on 4 examples; method: R R S S, 1 of 2 read accepted (s = 2): Y = 1 1 .5 .5
    # base: R S S K, 0 of 2 accepted (s = 2): Y = 1 1 1 0. Δ = 0.75 - 0.75 = 0, raw Δ 0.5 - 0.25 = 0.25
    method = (np.array([[1.0, 1, 0, 0]]), np.array([[0.0, 0, 1, 1]]), Verdicts(1, 2, 2))
    base = (np.array([[1.0, 0, 0, 0]]), np.array([[0.0, 1, 1, 0]]), Verdicts(0, 2, 2))
    delta = adjusted_difference(method, base)
    assert (delta.value, delta.raw, delta.read, delta.accepted) == (pytest.approx(0.0), pytest.approx(0.25), 4, 1)
    assert delta.low < 0 < delta.high


@pytest.fixture()
def store(tmp_path, make_row, plain_and_vda):
    """Plain and VDA of one seed (c1, c2) under one attack key k1; c1 also under k2."""
    store = ResultStore(tmp_path / "store")
    plain_and_vda(store)
    for checkpoint, statuses in (("c1", "ssffffffkk"), ("c2", "sssfffffff")):
        names = {"s": "succeeded", "f": "failed", "k": "skipped"}
        store.write_examples([make_row(f"e{i}", names[s], checkpoint, key="k1", protocol="strict",
                                       perturbed_text=f"attacked {i} on {checkpoint}" if s == "s" else f"text e{i}")
                              for i, s in enumerate(statuses)])
    store.write_examples([make_row("e0", "succeeded", "c1", key="k2", protocol="strict", attack="textfooler",
                                   perturbed_text="attacked 0 on c1")])
    return store


def _verdict_file(path, rows):
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _row(checkpoint, key, example, text, verdict, **more):
    return {"checkpoint_hash": checkpoint, "attack_key": key, "example_id": example, "perturbed_text": text,
            "verdict": verdict, "reason": "" if verdict == "acceptable" else "grammar", **more}


def test_a_verdict_never_joins_another_text(store, tmp_path):
    examples = store.load_examples()
    path = _verdict_file(tmp_path / "v.csv", [
        _row("c1", "k1", "e0", "attacked 0 on c1", "acceptable"),  # joins exactly one row
        _row("c1", "k1", "e1", "an older attack of e1", "reject"),  # the example was re-attacked: another text
        _row("c2", "k1", "e0", "attacked 0 on c1", "reject"),  # c1's text given for c2
        _row("c1", "k2", "e1", "attacked 1 on c1", "reject"),  # another attack key
    ])
    labelled, unmatched = join_verdicts(examples, read_verdicts([path], examples))
    read = labelled[labelled["verdict"].notna()]
    assert read[["checkpoint_hash", "attack_key", "example_id", "verdict"]].values.tolist() == [
        ["c1", "k1", "e0", "acceptable"]]
    assert len(unmatched) == 3 and len(labelled) == len(examples)
    assert labelled.loc[(labelled["checkpoint_hash"] == "c1") & (labelled["attack_key"] == "k2"), "verdict"].isna().all()


def test_records_without_attack_key_resolve_or_name_the_fix(store, tmp_path, make_row):
    examples = store.load_examples()
    legacy = _verdict_file(tmp_path / "legacy.csv", [
        {"protocol": "strict", "attack": "bert-attack", "checkpoint_hash": "c1", "example_id": "e1",
         "perturbed_text": "attacked 1 on c1", "verdict": "reject", "reason": "meaning changed"}])
    verdicts = read_verdicts([legacy], examples)
    assert verdicts["attack_key"].tolist() == ["k1"]
    store.write_examples([make_row("e1", "succeeded", "c1", key="k3", protocol="strict")])  # bert-attack again
    with pytest.raises(ValueError, match="several attack keys.*fill the verdict file's attack_key column"):
        read_verdicts([legacy], store.load_examples())
    keyed = _verdict_file(tmp_path / "keyed.csv", [{**pd.read_csv(legacy).iloc[0].to_dict(), "attack_key": "k3"}])
    assert read_verdicts([keyed], store.load_examples())["attack_key"].tolist() == ["k3"]  # the file says which
    with pytest.raises(ValueError, match="neither acceptable nor reject"):
        read_verdicts([_verdict_file(tmp_path / "bad.csv", [_row("c1", "k1", "e0", "x", "fine")])], examples)
    with pytest.raises(ValueError, match="lacks column"):
        read_verdicts([_verdict_file(tmp_path / "short.csv", [{"checkpoint_hash": "c1", "verdict": "reject"}])],
                      examples)


def test_readers_disagreeing_take_the_majority_and_a_tie_lets_the_attack_stand(store, tmp_path):
    text = "attacked 0 on c1"
    rows = [_row("c1", "k1", "e0", text, "reject", reviewer="ana", time="2026-12-07T10:00:00Z"),
            _row("c1", "k1", "e0", text, "acceptable", reviewer="ana", time="2026-12-07T11:00:00Z"),  # changed mind
            _row("c1", "k1", "e0", text, "reject", reviewer="bo", time="2026-12-07T10:30:00Z")]
    verdicts = read_verdicts([_verdict_file(tmp_path / "v.csv", rows)], store.load_examples())
    assert verdicts[["verdict", "readers"]].values.tolist() == [["acceptable", 2]]  # 1 : 1 is a tie
    rows.append(_row("c1", "k1", "e0", text, "reject", reviewer="cy", time="2026-12-07T12:00:00Z"))
    verdicts = read_verdicts([_verdict_file(tmp_path / "v.csv", rows)], store.load_examples())
    assert verdicts["verdict"].tolist() == ["reject"]


def test_reader_table_adjusts_each_method_and_pairs_the_delta(store, tmp_path):
    examples = store.load_examples()
    path = _verdict_file(tmp_path / "v.csv", [
        _row("c1", "k1", "e0", "attacked 0 on c1", "acceptable"), _row("c1", "k1", "e1", "attacked 1 on c1", "reject"),
        _row("c2", "k1", "e0", "attacked 0 on c2", "reject"), _row("c2", "k1", "e1", "attacked 1 on c2", "reject")])
    labelled, _ = join_verdicts(examples, read_verdicts([path], examples))
    table = reader_table(store.load_summary(), labelled).set_index(["attack key", "method"])
    plain, vda = table.loc[("k1", "BERT")], table.loc[("k1", "BERT+VDA (sharp) [vda.lam=1.0]")]
    # plain: 6 robust of 10, 2 successes, 1 of 2 accepted: 0.6 + 0.5 * 0.2 = 0.7
    assert plain["read"] == "1 of 2 accepted" and plain["reader-adjusted Att Acc [95 % CI]"].startswith("0.700 [")
    # VDA: 7 robust, 3 successes, none of 2 accepted: 0.7 + 1.0 * 0.3 = 1.0; Δ = 1.0 - 0.7 on the same 10 ids
    assert vda["reader-adjusted Att Acc [95 % CI]"].startswith("1.000 [")
    assert vda["Δ adjusted vs base [95 % CI]"].startswith("+0.300 [") and "vs BERT, 1 seed(s)" in vda[
        "Δ adjusted vs base [95 % CI]"]
    assert table.loc[("k2", "BERT"), "read"] == "no verdicts"  # a verdict on k1 says nothing about k2
    assert table.loc[("k2", "BERT"), "reader-adjusted Att Acc [95 % CI]"] == ""  # no estimate, a blank cell


def test_cli_summary_prints_the_reader_table(store, tmp_path, capsys):
    path = _verdict_file(tmp_path / "v.csv", [_row("c1", "k1", "e0", "attacked 0 on c1", "acceptable"),
                                              _row("c1", "k1", "e9", "not in the store", "reject")])
    assert main(["summary", "--store", str(store.root), "--verdicts", str(path)]) == 0
    captured = capsys.readouterr()
    assert "reader-adjusted Att Acc" in captured.out and "1 of 1 accepted" in captured.out
    assert "1 verdict(s) joined no success" in captured.err
    assert main(["summary", "--store", str(store.root), "--verdicts", str(path), "--csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))  # only the reader table: parseable CSV
    assert table.loc[table["method"] == "BERT", "read"].tolist() == ["1 of 1 accepted", "no verdicts"]  # k1, k2


def test_the_report_and_reproduce_print_the_reader_table(store, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("analysis.report.draw_plots", lambda *_: {})  # plots: test_report.py's
    from analysis.reproduce import main as reproduce

    path = _verdict_file(tmp_path / "v.csv", [_row("c1", "k1", "e0", "attacked 0 on c1", "acceptable"),
                                              _row("c1", "k1", "e1", "attacked 1 on c1", "reject")])
    assert main(["report", "--store", str(store.root), "--out", str(tmp_path / "r"), "--verdicts", str(path)]) == 0
    page = (tmp_path / "r" / "report.html").read_text()
    assert '<table id="readers"' in page and "<td>1 of 2 accepted</td><td>0.500 [" in page
    assert "<td>0.700 [" in page  # 0.6 robust + (1 - 0.5) * 0.2 successes
    assert reproduce(["--store", str(store.root), "--verdicts", str(path)]) == 0
    assert "reader-adjusted Att Acc [95 % CI]" in capsys.readouterr().out


def test_every_arm_finds_plain_as_its_base_when_label_smoothing_varies():
    """The mechanism study's store: label smoothing names its own row (BERT+LS), so plain's configuration
    shows the smoothing weight while VDA's base configuration does not. Before, VDA found no base there
    and its adjusted Δ was left empty."""
    def run(name, lam, smoothing, mode="-"):
        return {"checkpoint_hash": name, "attack_key": "k1", "attack": "bert-attack", "protocol": "strict",
                "config.vda.lam": lam, "config.vda.mode": mode, "config.seed": 1,
                "config.strategy.label_smoothing": smoothing}
    groups = method_groups(pd.DataFrame([run("c1", 0.0, 0.0), run("c2", 1.0, 0.0, "sharp"), run("c3", 0.0, 0.1)]))
    by_run = {row.checkpoint_hash: groups[groups["group"] == row.group] for row in groups.itertuples()}
    plain = by_run["c1"]["group"].iloc[0]
    assert plain == "BERT [strategy.label_smoothing=0.0]"
    assert _base_group(by_run["c2"], groups, "k1") == plain
    assert _base_group(by_run["c3"], groups, "k1") == plain
    assert _base_group(by_run["c1"], groups, "k1") is None
