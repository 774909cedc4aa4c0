"""The README's and the result pages' numbers agree with what they cite (issue 29.10).

What is checked here is what the repository holds: the committed reading records and the counts
behind each one-checkpoint interval, and the committed study export the MR pages quote (the pages'
intervals themselves: tests/analysis/test_results_pages.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from attack_workers.results.uncertainty import format_ci, wilson_interval

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text()
CALIBRATION = (ROOT / "docs" / "results" / "calibration.md").read_text()
READING = ROOT / "docs" / "results" / "reading"


def _calibration_rows() -> list[tuple[str, str, int, str]]:
    """(protocol, checkpoint, examples, Att Acc cell) of calibration.md's protocol table."""
    pattern = re.compile(r"^\| `(\S+)` \| (plain|VDA) \| (\d+) \| [\d.]+ \| ([\d.]+ \[[\d.]+, [\d.]+\]) \|", re.M)
    return [(p, c, int(n), cell) for p, c, n, cell in pattern.findall(CALIBRATION)]


def test_one_checkpoint_intervals_are_wilsons_and_labelled():
    """Before: the textattack row's interval was Wilson's, the others the one-seed t interval, one column."""
    rows = _calibration_rows()
    assert len(rows) == 5
    for protocol, checkpoint, n, cell in rows:
        value = float(cell.split()[0])
        robust = round(value * n)
        assert cell == format_ci(robust / n, *wilson_interval(robust, n)), (protocol, checkpoint)
    assert "Att Acc [95 % Wilson CI, one checkpoint]" in CALIBRATION
    plain = {protocol: cell for protocol, checkpoint, _, cell in rows if checkpoint == "plain"}
    for protocol, cell in plain.items():  # the README's status table quotes the plain rows
        assert re.search(rf"^\| `{re.escape(protocol)}`.*\| {re.escape(cell)} \|", README, re.M), protocol
    assert "[95 % Wilson CI, one checkpoint]" in README and "[95 % CI, 3 seeds]" in README


@pytest.mark.parametrize("attack, name", [("bert-attack", "BERT-Attack"), ("textfooler", "TextFooler"),
                                          ("pwws", "PWWS")])
def test_the_readme_quotes_the_committed_reading_record_of_the_mr_study(attack, name):
    """Before: "Known limitations" said `strict` successes were acceptable 58 % of the time and the MR
    study awaited a re-run, while its record read otherwise. Now the README quotes the mechanism study's
    record of every `strict` v3 success, per attack, in its status table and its limitations."""
    verdicts = pd.read_csv(READING / "mechanism-strict-v3.csv", keep_default_na=False)
    verdicts = verdicts.loc[verdicts["attack"] == attack, "verdict"]
    quoted = f"{int((verdicts == 'acceptable').sum())} of {len(verdicts)}"
    assert re.search(rf"^\| {re.escape(name)} \(`strict` v3\) \|.*\| {quoted} \|$", README, re.M)
    limitations = " ".join(README[README.index("## Known limitations"):].split())  # line breaks as spaces
    assert f"{quoted} ({name})" in limitations
    assert "awaits a re-run" not in limitations and "58 % of the time" not in limitations


def test_the_mr_study_union_q_num_is_the_sum_of_its_attacks(tmp_path):
    """Issue 29.2: union Q Num = the sum of the attacks' Q Num (before: +2.0 on every checkpoint, the extra
    initial predictions), on every `strict` checkpoint of the committed study export that study-mr.md quotes."""
    from attack_workers.results.export import import_store
    from attack_workers.results.store import load_summary

    import_store(ROOT / "results" / "studies" / "mechanism-mr", tmp_path / "store")
    strict = load_summary(tmp_path / "store").query("protocol == 'strict'")
    per_attack = strict.pivot_table(index="checkpoint_hash", columns="attack", values="avg_queries")
    assert len(per_attack) >= 21 and set(per_attack.columns) == {"bert-attack", "textfooler", "pwws", "union"}
    attacks = per_attack[["bert-attack", "textfooler", "pwws"]].sum(axis=1)
    assert per_attack["union"].to_numpy() == pytest.approx(attacks.to_numpy(), abs=1e-9)