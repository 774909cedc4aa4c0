"""Every private Ray internal this project reads, each behind one small function.

Ray has no public way to (1) find the cluster that ``ray start`` left on this machine without
joining it, or (2) close an ``OptunaSearch`` trial after Tune has completed it (the sweep's
objectives arrive from the attack pool, later). Nothing else in the project touches these
internals; ``tests/tune/test_ray_compat.py`` exercises each against the installed Ray, so an
upgrade that moves one fails there with a ``RayCompatError`` naming it. pyproject.toml bounds
Ray to the versions those tests passed on.
"""

from __future__ import annotations

from typing import Any

TESTED_RAY = "2.60"  # the ray releases tests/tune/test_ray_compat.py passed on


class RayCompatError(RuntimeError):
    """A Ray internal this project reads has moved; the message names it and the fix."""


def _moved(what: str, exc: Exception) -> RayCompatError:
    import ray

    return RayCompatError(f"ray {ray.__version__} no longer has {what} ({type(exc).__name__}: {exc}); this "
                          f"project was tested with ray {TESTED_RAY}.x: install it (pip install "
                          f"'ray[tune]=={TESTED_RAY}.*') or port tune/ray_compat.py to this version")


def read_ray_address() -> str | None:
    """The address of the cluster ``ray start`` left on this machine (what a bare ``ray.init()`` joins), or None."""
    try:
        from ray._private.utils import read_ray_address as read
    except ImportError as exc:
        raise _moved("ray._private.utils.read_ray_address", exc) from None
    return read() or None


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
        raise _moved(f"OptunaSearch.{name}", exc) from None
