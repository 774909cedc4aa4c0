"""The training-code version: the record follows the training sources, and a changed source needs an update."""

from __future__ import annotations

import json

import pytest

from vda import training_version
from vda.training_version import TRAINING_SOURCES, check, main, source_text, training_code_version, update


def test_the_training_sources_match_the_recorded_version():
    """Fails when code that decides what a config trains changed and training_code.json did not:
    run `python -m vda.training_version --bump` (or `--same-behaviour`), as the message says."""
    problem = check()
    assert problem is None, problem


def test_every_training_source_is_found():
    for module in TRAINING_SOURCES:
        assert source_text(module).strip(), module


def test_a_changed_source_fails_until_the_record_is_bumped_or_declared_the_same(tmp_path, monkeypatch):
    package = tmp_path / "demo"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "loop.py").write_text("LR = 1e-4\n")
    monkeypatch.setattr(training_version, "ROOT", tmp_path)
    sources, record = ("demo.loop", "demo"), tmp_path / "training_code.json"
    record.write_text(json.dumps({"version": 3, "fingerprint": ""}))
    assert "python -m vda.training_version --bump" in check(sources, record)

    assert update(bump=False, sources=sources, record=record)["version"] == 3
    assert check(sources, record) is None
    (package / "loop.py").write_text("LR = 2e-4\n")
    assert "--same-behaviour" in check(sources, record)
    assert update(bump=True, sources=sources, record=record)["version"] == 4
    assert check(sources, record) is None and training_code_version(record) == 4
    with pytest.raises(LookupError, match="no such module"):
        source_text("demo.gone")


def test_the_command_reports_a_stale_record(tmp_path, monkeypatch, capsys):
    record = tmp_path / "training_code.json"
    record.write_text(json.dumps({"version": 1, "fingerprint": "stale"}))
    monkeypatch.setattr(training_version, "RECORD", record)
    assert main([]) == 1 and "--bump" in capsys.readouterr().out
    assert main(["--bump"]) == 0 and json.loads(record.read_text())["version"] == 2
    assert main([]) == 0
