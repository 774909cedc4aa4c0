"""The private Ray internals behind ``tune.ray_compat`` still work on the installed Ray (no Ray started).

When one of these fails after a Ray upgrade, the error names the moved internal: port
tune/ray_compat.py or keep Ray within pyproject's bounds.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tune.ray_compat import RayCompatError, open_optuna_trial, read_ray_address


def test_read_ray_address_finds_the_cluster_ray_start_left(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    assert read_ray_address() is None
    (tmp_path / "ray" / "ray_current_cluster").parent.mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("10.0.0.5:6379\n")  # what `ray start --head` writes
    assert read_ray_address() == "10.0.0.5:6379"


def test_optuna_trials_are_told_through_the_searchers_internals():
    import optuna
    from ray import tune

    from tune.search import ObjectiveOptunaSearch

    searcher = ObjectiveOptunaSearch(("attack_acc", "dev_acc"), "dev_acc", space={"x": tune.uniform(0, 1)}, seed=0)
    assert "x" in searcher.suggest("t1") and searcher.is_open("t1") and not searcher.is_open("unknown")
    searcher.on_trial_complete("t1", {"dev_acc": 0.5})  # Tune completes it; the objectives come later
    assert searcher.is_open("t1")
    searcher.tell("t1", {"attack_acc": 0.25, "dev_acc": 0.5})
    assert not searcher.is_open("t1") and open_optuna_trial(searcher, "t1") is None
    (trial,) = searcher._ot_study.trials
    assert trial.state == optuna.trial.TrialState.COMPLETE and trial.values == [0.25, 0.5]


def test_a_moved_internal_fails_naming_it():
    with pytest.raises(RayCompatError, match=r"no longer has OptunaSearch\._completed_trials.*tested with ray 2\.60"):
        open_optuna_trial(SimpleNamespace(), "t1")
