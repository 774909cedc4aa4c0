"""The attack-code version: the recorded fingerprint follows the rule sources, and a changed rule needs a bump."""

from __future__ import annotations

import importlib
import json
import re
import shutil
from pathlib import Path

import pytest

from attack_workers.attack.attack_version import (LIBRARIES, attack_code_identity, check, rule_source, rule_sources,
                                                   update)

PACKAGE = Path(__file__).resolve().parents[3] / "attack_workers"


def test_the_rule_sources_match_the_recorded_version():
    """Fails when a rule that decides what an attack accepts changed and ATTACK_CODE_VERSION did not."""
    problem = check()
    assert problem is None, problem


def test_every_rule_source_is_found():
    for entry in rule_sources():
        assert rule_source(entry).strip(), entry


def test_the_rule_sources_are_every_module_the_protocols_recipes_and_audit_import():
    sources = set(rule_sources())
    assert {"attack_workers.attack.protocols", "attack_workers.attack.recipes", "attack_workers.attack.strict",
            "attack_workers.lexicon.relations", "attack_workers.lexicon.audit", "attack_workers.lexicon.tagger",
            "attack_workers.attack.search", "attack_workers.lexicon.stopwords"} <= sources
    assert not [s for s in sources if s.startswith(("attack_workers.results", "attack_workers.runtime"))]


# Issue 29.8: rules that decided outcomes and were missing from the hand-kept list (and one that was there)
MUTATIONS = [
    ("lexicon/relations.py", r"^MAX_SENSE_RANK = ", "MAX_SENSE_RANK = 2 + "),  # 3 -> 5
    ("lexicon/relations.py", r"^def antonyms_of\(", "@staticmethod\ndef antonyms_of("),
    ("attack/protocols.py", r"^STRICT_WINDOW_WORDS = ", "STRICT_WINDOW_WORDS = -4 + "),  # 7 -> 3
    ("lexicon/audit.py", r"^CLEAR_VALENCE = ", "CLEAR_VALENCE = 0.5 + "),  # the audit's flags feed Flagged
    ("attack/search.py", r"^class ", "class _Unused:\n    pass\n\n\nclass "),
]


@pytest.mark.parametrize("path, pattern, replacement", MUTATIONS, ids=[m[0] + ":" + m[1] for m in MUTATIONS])
def test_a_changed_rule_anywhere_the_protocols_reach_fails_the_check(tmp_path, monkeypatch, path, pattern,
                                                                     replacement):
    """A copy of the package first on sys.path: its fingerprint recorded, then one rule changed."""
    shutil.copytree(PACKAGE, tmp_path / "attack_workers", ignore=shutil.ignore_patterns("__pycache__", "*.json"))
    monkeypatch.syspath_prepend(str(tmp_path))
    record = tmp_path / "attack_code.json"
    record.write_text(json.dumps({"version": 1, "fingerprint": ""}))
    update(record=record, version=1, same_behaviour=True)
    assert check(record=record, version=1) is None
    target = tmp_path / "attack_workers" / path
    changed, count = re.subn(pattern, replacement, target.read_text(), count=1, flags=re.MULTILINE)
    assert count == 1, f"{path} has no {pattern}"
    target.write_text(changed)
    assert "bump ATTACK_CODE_VERSION" in check(record=record, version=1)


def test_the_key_names_the_libraries_whose_data_decide_outcomes():
    from attack_workers.lexicon.tagger import SPACY_MODEL

    identity = attack_code_identity()
    assert SPACY_MODEL.replace("_", "-") in LIBRARIES and "lemminflect" in LIBRARIES and "textattack" in LIBRARIES
    assert all(identity[name] for name in LIBRARIES)


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
