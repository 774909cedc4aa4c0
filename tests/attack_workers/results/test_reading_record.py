"""The committed reading record (docs/results/reading/*.csv) parses: every success has a verdict and
every rejection its reason. What the verdicts say is a person's judgement, not a test's."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

READING = Path(__file__).resolve().parents[3] / "docs" / "results" / "reading"
FILES = sorted(READING.glob("*.csv"))
COLUMNS = ["protocol", "checkpoint_hash", "example_id", "original_text", "perturbed_text", "substitutions",
           "audit_flagged", "verdict", "reason"]  # scripts/sample_for_reading.py writes these


def test_there_is_a_record_for_each_protocol():
    assert {p.stem for p in FILES} >= {"vda-paper", "strict", "textattack"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_read_success_has_a_verdict_and_a_reason_when_rejected(path):
    rows = pd.read_csv(path, keep_default_na=False)
    # records drawn since several attacks exist carry the attack: <prefix><protocol>[-<attack>].csv
    assert [c for c in rows.columns if c != "attack"] == COLUMNS and len(rows) >= 1
    attack = rows["attack"] if "attack" in rows else pd.Series("bert-attack", index=rows.index)
    names = [f"{p}" if a == "bert-attack" else f"{p}-{a}" for p, a in zip(rows["protocol"], attack)]
    assert all(path.stem.removeprefix("study-") == name for name in names)
    assert set(rows["verdict"]) <= {"acceptable", "reject"}, "fill in every verdict"
    assert (rows.loc[rows["verdict"] == "reject", "reason"].str.strip() != "").all()
    assert not rows.duplicated(["checkpoint_hash", "example_id", "perturbed_text"]).any()
