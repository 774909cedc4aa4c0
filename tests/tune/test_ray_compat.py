"""The private Ray Tune internals behind ``tune.ray_compat`` still work on the installed Ray (no Ray started).

When one of these fails after a Ray upgrade, the error names the moved internal: port
tune/ray_compat.py or keep Ray within pyproject's bounds. Ray core's internals are tested in
tests/attack_workers/runtime/test_ray_compat.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from attack_workers.runtime.ray_compat import RayCompatError
from tune.ray_compat import open_optuna_trial


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
    moved = r"no longer has OptunaSearch\._completed_trials.*tested with ray 2\.60.*port tune/ray_compat\.py"
    with pytest.raises(RayCompatError, match=moved):
        open_optuna_trial(SimpleNamespace(), "t1")
