"""How a sweep searches: the searcher, the early-stopping scheduler and which checkpoints Tune keeps.

Objectives are measured on each trial's *selected* checkpoint (its best epoch by
``fixed.selection_metric``, or its last: ``sweep.attack.checkpoints``), never on whatever epoch
happened to report last. Attack accuracy exists only once the attack pool has attacked that
checkpoint, after the trial has ended. ``ObjectiveOptunaSearch`` therefore leaves a trial's Optuna
trial open when Tune finishes it and is told the objectives by ``tune.pipeline`` when they are
known. TPE meanwhile treats the trial as running, so later suggestions still avoid its point.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import BasicVariantGenerator
from ray.tune.search.optuna import OptunaSearch

from tune.config import OBJECTIVES, SweepSpec
from tune.ray_compat import close_optuna_trial, open_optuna_trial
from tune.space import train_config
from tune.trainable import IS_BEST


class ObjectiveOptunaSearch(OptunaSearch):
    """``OptunaSearch`` whose trials are told their objectives by the attack pipeline (see the module doc)."""

    def __init__(self, objectives: tuple[str, ...], reported_metric: str, **kwargs: Any) -> None:
        modes = [OBJECTIVES[o].mode for o in objectives]
        multi = len(objectives) > 1
        super().__init__(metric=list(objectives) if multi else objectives[0], mode=modes if multi else modes[0],
                         **kwargs)
        self._objectives = tuple(objectives)
        self._reported_metric = reported_metric

    @property
    def metric(self) -> str:
        """What Tune checks every trial reports. The objectives themselves arrive through ``tell``."""
        return self._reported_metric

    @property
    def mode(self) -> str:
        return OBJECTIVES[self._reported_metric].mode

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """No intermediate values: the objectives are not known while a trial trains (no pruner reads them)."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if error or not result:  # nothing will be measured: Optuna records it failed (error) or pruned
            super().on_trial_complete(trial_id, None, error)

    def is_open(self, trial_id: str) -> bool:
        return open_optuna_trial(self, trial_id) is not None

    def tell(self, trial_id: str, values: Mapping[str, float] | None) -> None:
        """Close ``trial_id``'s Optuna trial with its objective values; None or a missing value: failed."""
        import optuna

        if not self.is_open(trial_id):
            return
        found = [values.get(o) for o in self._objectives] if values else []
        ok = bool(found) and all(v is not None and math.isfinite(v) for v in found)
        value = (found if len(found) > 1 else found[0]) if ok else None
        state = optuna.trial.TrialState.COMPLETE if ok else optuna.trial.TrialState.FAIL
        close_optuna_trial(self, trial_id, value, state)


def optuna_storage_url(output_dir: Path) -> str:
    return f"sqlite:///{(output_dir / 'optuna.db').resolve()}"


def build_searcher(spec: SweepSpec, output_dir: Path, max_concurrent: int) -> Any:
    """Tune's variant generator (grid, seeded sampling) or the seeded Optuna TPE search, persisted in SQLite.

    ``max_concurrent`` goes into the variant generator itself (Tune ignores ``max_concurrent_trials``
    for it); an Optuna searcher gets it from ``TuneConfig.max_concurrent_trials``.
    """
    sweep = spec.sweep
    if sweep.searcher == "grid":
        return BasicVariantGenerator(random_state=sweep.seed, max_concurrent=max_concurrent)
    import optuna

    storage = optuna.storages.RDBStorage(optuna_storage_url(output_dir))
    return ObjectiveOptunaSearch(sweep.objectives, selection_metric(spec), study_name=sweep.name, storage=storage,
                                 seed=sweep.seed)


def selection_metric(spec: SweepSpec) -> str:
    """The per-epoch metric that picks a trial's best checkpoint and drives early stopping."""
    return train_config(spec.fixed, {}, "fixed").selection_metric


def build_scheduler(spec: SweepSpec) -> ASHAScheduler | None:
    """ASHA on the per-epoch selection metric (attack results come too late to stop a trial)."""
    if spec.sweep.scheduler == "none":
        return None
    metric = selection_metric(spec)
    return ASHAScheduler(time_attr="training_iteration", metric=metric, mode=OBJECTIVES[metric].mode,
                         max_t=max_epochs(spec), grace_period=spec.sweep.asha.grace_period,
                         reduction_factor=spec.sweep.asha.reduction_factor)


def max_epochs(spec: SweepSpec) -> int:
    """The most epochs any trial can train (one Tune iteration per epoch)."""
    candidates = [train_config(spec.fixed, {}, "fixed").epochs]
    candidates += [v.get("epochs", 0) for v in spec.variants.values()]
    if "epochs" in spec.search:
        candidates += spec.search["epochs"].candidates()
    return int(max(candidates))


def checkpoint_config(spec: SweepSpec) -> tune.CheckpointConfig:
    """Keep what the pipeline will attack (and the latest checkpoint, which Tune always keeps to resume)."""
    which = spec.sweep.attack.checkpoints
    if which == "every_epoch":
        return tune.CheckpointConfig(num_to_keep=None)
    if which == "last":
        return tune.CheckpointConfig(num_to_keep=1)
    # Ties in the score keep the later checkpoint, and every is_best=1 epoch beat all earlier ones:
    # the kept is_best=1 checkpoint is the trial's best epoch.
    return tune.CheckpointConfig(num_to_keep=1, checkpoint_score_attribute=IS_BEST, checkpoint_score_order="max")
