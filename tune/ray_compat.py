"""The private internals of Ray Tune that the sweep reads, each behind one small function.

Ray Tune has no public way to close an ``OptunaSearch`` trial after Tune has completed it (the
sweep's objectives arrive from the attack pool, later). Ray core's internals, and how the project
starts Ray, are in ``attack_workers/runtime/ray_compat.py`` (the attack package may not import ``tune``);
this module shares its ``RayCompatError`` and ``TESTED_RAY``. ``tests/tune/test_ray_compat.py``
exercises each internal against the installed Ray, so an upgrade that moves one fails there with a
``RayCompatError`` naming it.
"""

from __future__ import annotations

from typing import Any

from attack_workers.runtime.ray_compat import moved


def open_optuna_trial(searcher: Any, trial_id: str) -> Any | None:
    """The ``optuna.Trial`` of Tune trial ``trial_id`` in an ``OptunaSearch``, or None if unknown or already told."""
    if trial_id in _private(searcher, "_completed_trials"):
        return None
    return _private(searcher, "_ot_trials").get(trial_id)


def close_optuna_trial(searcher: Any, trial_id: str, value: Any, state: Any) -> None:
    """Tell the open Optuna trial of ``trial_id`` its ``value`` and ``state``; the searcher then counts it done."""
    trial = open_optuna_trial(searcher, trial_id)
    if trial is None:
        raise ValueError(f"trial {trial_id} has no open Optuna trial; check open_optuna_trial first")
    # skip_if_finished: a trial told just before an interruption is told again after the resume
    _private(searcher, "_ot_study").tell(trial, value, state=state, skip_if_finished=True)
    _private(searcher, "_completed_trials").add(trial_id)


def _private(searcher: Any, name: str) -> Any:
    try:
        return getattr(searcher, name)
    except AttributeError as exc:
        raise moved(f"OptunaSearch.{name}", exc, "tune/ray_compat.py") from None
