"""The committed reading record (docs/results/reading/*.csv) parses: every success has a verdict and
every rejection its reason. What the verdicts say is a person's judgement, not a test's.

Two shapes: the older records of scripts/sample_for_reading.py (one protocol and attack per file, the
file named after them) and the records of the Review tab or `attack_workers review` (RECORD_COLUMNS:
the attack key, the reader and the time on every row, any attacks in one file)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.review import RECORD_COLUMNS

READING = Path(__file__).resolve().parents[3] / "docs" / "results" / "reading"
FILES = sorted(READING.glob("*.csv"))
COLUMNS = ["protocol", "checkpoint_hash", "example_id", "original_text", "perturbed_text", "substitutions",
           "audit_flagged", "verdict", "reason"]  # scripts/sample_for_reading.py writes these


def test_there_is_a_record_for_each_protocol():
    assert {p.stem for p in FILES} >= {"vda-paper", "strict", "textattack"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_read_success_has_a_verdict_and_a_reason_when_rejected(path):
    rows = pd.read_csv(path, keep_default_na=False)
    if "reviewer" in rows:
        assert list(rows.columns) == RECORD_COLUMNS and len(rows) >= 1
        assert (rows["reviewer"] != "").all() and (rows["attack_key"] != "").all()
        _check_verdicts(rows)
        return
    # records drawn since several attacks exist carry the attack: <prefix><protocol>[-<attack>].csv
    assert [c for c in rows.columns if c != "attack"] == COLUMNS and len(rows) >= 1
    attack = rows["attack"] if "attack" in rows else pd.Series("bert-attack", index=rows.index)
    names = [f"{p}" if a == "bert-attack" else f"{p}-{a}" for p, a in zip(rows["protocol"], attack)]
    assert all(path.stem.removeprefix("study-") == name for name in names)
    _check_verdicts(rows)


def _check_verdicts(rows: pd.DataFrame) -> None:
    assert set(rows["verdict"]) <= {"acceptable", "reject"}, "fill in every verdict"
    assert (rows.loc[rows["verdict"] == "reject", "reason"].str.strip() != "").all()
    key = ["checkpoint_hash", "attack_key" if "attack_key" in rows else "protocol", "example_id", "perturbed_text"]
    assert not rows.duplicated(key).any(), "a text is read once per checkpoint and attack"
