"""The two strict v3 measurement scripts' own logic: rule separation on the reading records
(scripts/strict_rule_records.py) and the rule-cost settings (scripts/strict_rule_cost.py), on planted data."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def records():
    return load("strict_rule_records")


@pytest.fixture(scope="module")
def cost():
    return load("strict_rule_cost")


def test_separation_counts_rows_and_distinct_texts(records):
    def record(accepted: bool, text: str, *pairs: tuple[str, str]):
        words = text.split()
        swaps = tuple((words, words.index(old), old, new) for old, new in pairs)
        return records.Record("strict", accepted, (text, text + "'"), swaps)

    rows = [record(False, "run of the mill", ("mill", "factory")),
            record(False, "run of the mill", ("mill", "factory")),  # the same success on another checkpoint
            record(False, "an odd drama", ("odd", "uneven")),
            record(True, "a fine movie", ("movie", "film")),
            record(True, "an odd movie", ("odd", "strange"), ("movie", "film"))]
    counts = records.separation(rows, lambda swap: swap[3] in ("factory", "film"))
    assert counts == {"accepted rows": 2, "accepted rows refused": 2, "accepted texts": 2,
                      "accepted texts refused": 2, "rejected rows": 3, "rejected rows refused": 2,
                      "rejected texts": 2, "rejected texts refused": 1}
    assert "| 2 of 2 | 2 of 2 | 2 of 3 | 1 of 2 |" in records.table(rows, {"r": lambda s: s[3] in ("factory", "film")})


def test_the_records_are_read_as_textattack_splits_them(records, tmp_path):
    csv = tmp_path / "strict.csv"
    csv.write_text("protocol,example_id,original_text,perturbed_text,verdict,reason\n"
                   'strict,e1,"It is run of the mill, sadly.","It is run of the factory, sadly.",reject,idiom\n'
                   "strict,e2,One more word,One more extra word,reject,inserted\n")
    (row,) = records.load_records([csv])  # e2's word counts differ: skipped
    assert not row.accepted and [(w[i], old, new) for w, i, old, new in row.swaps] == [("mill", "mill", "factory")]


def test_each_cost_setting_switches_off_its_own_rules(cost):
    from attack_workers.attack.protocols import AttackParams

    params = cost.settings_params(AttackParams())
    v3 = params["v3 (every rule)"]
    assert v3 == AttackParams()
    changed = {name: {k for k, v in p.to_dict().items() if v != v3.to_dict()[k]} for name, p in params.items()}
    assert changed["without the sense check"] == {"strict_sense_candidates"}
    assert changed["without idioms of 3-4 words"] == {"strict_max_collocation_words"}
    assert changed["without the polarity check"] == {"strict_refuse_polarity_flip"}
    assert changed["v2 (none of the three)"] == {"strict_sense_candidates", "strict_max_collocation_words",
                                                  "strict_refuse_polarity_flip"}


def test_the_cost_table_counts_what_each_missing_rule_lets_through(cost):
    def row(setting: str, succeeded: int):
        return {"setting": setting, "attack": "pwws", "num_examples": 20, "num_succeeded": succeeded,
                "attack_success_rate": succeeded / 16, "attack_acc": (16 - succeeded) / 20}

    table = cost.cost_table([row("without the sense check", 5), row("v3 (every rule)", 2)])
    lines = table.splitlines()
    assert lines[2].startswith("| pwws | v3 (every rule) | 20 | 2 |") and lines[2].endswith("|  |")
    assert lines[3].startswith("| pwws | without the sense check | 20 | 5 | 0.312 | 0.550 | 3 |")
