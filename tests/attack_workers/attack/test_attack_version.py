"""The attack-code version: the recorded fingerprint follows the rule sources, and a changed rule needs a bump."""

from __future__ import annotations

import importlib
import json

import pytest

from attack_workers.attack.attack_version import RULE_SOURCES, check, rule_source, update


def test_the_rule_sources_match_the_recorded_version():
    """Fails when a rule that decides what an attack accepts changed and ATTACK_CODE_VERSION did not."""
    problem = check()
    assert problem is None, problem


def test_every_rule_source_is_found():
    for entry in RULE_SOURCES:
        assert rule_source(entry).strip(), entry


def test_a_changed_rule_fails_until_the_version_is_bumped(tmp_path, monkeypatch):
    module = tmp_path / "demo_rules.py"
    module.write_text('"""Demo."""\n\nLIMIT = 3\n\n\n@staticmethod\ndef allowed(word):\n    return len(word) > LIMIT\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    sources, record = ("demo_rules:allowed", "demo_rules:LIMIT"), tmp_path / "attack_code.json"
    record.write_text(json.dumps({"version": 1, "fingerprint": ""}))
    update(sources, record, version=2)
    assert check(sources, record, version=2) is None
    assert rule_source("demo_rules:allowed").startswith("@staticmethod\ndef allowed")

    module.write_text(module.read_text().replace('"""Demo."""', '"""Demo, reworded."""'))
    assert check(sources, record, version=2) is None  # outside the named rules: no bump needed
    module.write_text(module.read_text().replace("> LIMIT", ">= LIMIT"))
    problem = check(sources, record, version=2)
    assert "bump ATTACK_CODE_VERSION and run `python -m attack_workers.attack.attack_version --update`" in problem
    with pytest.raises(ValueError, match="bump ATTACK_CODE_VERSION"):
        update(sources, record, version=2)
    assert "run `python -m attack_workers.attack.attack_version --update`" in check(sources, record, version=3)
    update(sources, record, version=3)
    assert check(sources, record, version=3) is None
    assert "versions only go up" in check(sources, record, version=2)

    module.write_text(module.read_text().replace("LIMIT = 3", "LIMIT = 3  # letters"))
    update(sources, record, version=3, same_behaviour=True)  # a comment: recorded without a bump
    assert check(sources, record, version=3) is None


def test_a_rule_that_is_gone_is_named():
    with pytest.raises(LookupError, match="defines no top-level 'no_such_rule'"):
        rule_source("attack_workers.attack.transformation:no_such_rule")
