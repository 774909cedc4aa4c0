"""Attacks pipelined with training: a Tune callback hands finished checkpoints to the attack pool.

``AttackPipeline`` sees every checkpoint a trial reports (``on_checkpoint``) and, when the trial
ends, picks the one its objectives are measured on (``best``: the latest epoch that improved the
selection metric; ``last``). It hands checkpoints to a background thread that owns an
``attack_workers.AttackPool`` for the whole sweep, so Tune keeps scheduling trials while earlier
checkpoints are attacked. The pool's actors hold their own Ray resources, counted against the
same cluster as the trials (on a local Ray, ``tune.sweep`` caps concurrent trials so both fit).

Every attacked checkpoint lands in the results store as rows of the attack plus its manifest
(the trial's hyperparameters and training metrics); every other local checkpoint is recorded too,
so the store alone draws the accuracy-per-epoch curves. When the objectives are known, the
pipeline tells the Optuna searcher (``tune.search.ObjectiveOptunaSearch``). Resuming is cheap: the
pool skips examples the store already holds, so re-submitting a checkpoint attacks nothing twice.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from ray import tune

from tune.config import AttackSettings, SweepSpec
from tune.search import ObjectiveOptunaSearch
from tune.trainable import IS_BEST

log = logging.getLogger("tune.pipeline")
_TRAINING_METRICS = ("epoch", "dev_acc", "dev_loss")
_ATTACK_METRICS = ("clean_acc", "attack_acc")
_STOP = None  # sentinel in the runner's inbox


@dataclass(frozen=True)
class CheckpointRef:
    trial_id: str
    path: str  # local path, or a URI (s3://...) when Tune's storage is remote
    metrics: dict[str, float]  # the epoch's training metrics (epoch, dev_acc, dev_loss)
    is_best: bool


@dataclass(frozen=True)
class _Job:
    ref: CheckpointRef
    tell: bool  # the trial's objectives wait for this checkpoint's attack


def select_checkpoint(refs: list[CheckpointRef], which: str) -> CheckpointRef | None:
    """The checkpoint a trial's objectives are measured on: its last, or its latest improving one."""
    if which == "last":
        return refs[-1] if refs else None
    best = [r for r in refs if r.is_best]
    return best[-1] if best else None


def _uri(checkpoint: tune.Checkpoint) -> str:
    import pyarrow.fs

    if isinstance(checkpoint.filesystem, pyarrow.fs.LocalFileSystem):
        return checkpoint.path
    return f"{checkpoint.filesystem.type_name}://{checkpoint.path}"


class AttackPipeline(tune.Callback):
    """Feeds the attack pool from Tune's checkpoints and tells the searcher each trial's objectives."""

    def __init__(self, spec: SweepSpec, attack: AttackSettings, output_dir: Path,
                 searcher: ObjectiveOptunaSearch | None, progress: bool = True) -> None:
        self._attack = attack  # resources already fitted to the cluster by tune.sweep
        self._wait_for_attack = spec.sweep.needs_attack_results
        self._output_dir = output_dir
        self._searcher = searcher
        self._progress = progress
        self._refs: dict[str, list[CheckpointRef]] = {}
        self._selected: dict[str, CheckpointRef | None] = {}  # finished trials
        self._runner: _AttackRunner | None = None
        self._resubmit = False

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks with the experiment; threads stay out
        return {**self.__dict__, "_runner": None}

    # ------------------------------------------------------------ Tune hooks

    def setup(self, **info: Any) -> None:
        if self._attack.enabled:
            self._runner = _AttackRunner(self._attack, self._output_dir, self._progress)

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: tune.Checkpoint, **info: Any) -> None:
        result = trial.last_result  # Tune updates it before processing the checkpoint reported with it
        ref = CheckpointRef(trial.trial_id, _uri(checkpoint), {k: result[k] for k in _TRAINING_METRICS if k in result},
                            bool(result.get(IS_BEST)))
        self._refs.setdefault(trial.trial_id, []).append(ref)
        if "://" not in ref.path:
            _record_checkpoint(self._output_dir / "store", ref.path)
        if self._runner and self._attack.checkpoints == "every_epoch":
            self._runner.submit([_Job(ref, tell=False)])

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        ref = select_checkpoint(self._refs.get(trial.trial_id, []), self._attack.checkpoints)
        self._selected[trial.trial_id] = ref
        self._measure(trial.trial_id, ref)

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        self._finish_restored()
        self._tell_finished()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._finish_restored()  # a restored sweep whose trials had all finished runs no step
        if self._runner is None:
            return
        interrupted = any(t.status not in ("TERMINATED", "ERROR") for t in trials)
        if interrupted:  # a resume re-submits what is dropped here; the store keeps every finished shard
            log.warning("sweep interrupted: finishing the attack in progress, dropping queued ones "
                        "(Ctrl+C again stops at once)")
        self._runner.finish(drop_queued=interrupted)
        self._tell_finished()

    def get_state(self) -> dict[str, Any]:
        return {"refs": {t: [dataclasses.asdict(r) for r in refs] for t, refs in self._refs.items()},
                "selected": {t: dataclasses.asdict(r) if r else None for t, r in self._selected.items()}}

    def set_state(self, state: dict[str, Any]) -> None:
        self._refs = {t: [CheckpointRef(**r) for r in refs] for t, refs in state["refs"].items()}
        self._selected = {t: CheckpointRef(**r) if r else None for t, r in state["selected"].items()}
        self._resubmit = True

    # ------------------------------------------------------------ objectives

    def _finish_restored(self) -> None:
        """Once after a restore: re-submit what the interrupted run may have left unattacked or untold."""
        if not self._resubmit:
            return
        self._resubmit = False
        if self._runner and self._attack.checkpoints == "every_epoch":
            self._runner.submit([_Job(r, tell=False) for refs in self._refs.values() for r in refs])
        for trial_id, ref in self._selected.items():
            self._measure(trial_id, ref)

    def _measure(self, trial_id: str, ref: CheckpointRef | None) -> None:
        """Attack ``ref`` and tell its objectives now (training-only) or once the attack reports back."""
        wait = self._wait_for_attack and ref is not None
        if self._runner and ref is not None and (wait or self._attack.checkpoints != "every_epoch"):
            self._runner.submit([_Job(ref, tell=wait)])
        if not wait:
            self._tell(trial_id, ref.metrics if ref else None)

    def _tell_finished(self) -> None:
        if self._runner:
            for trial_id, values in self._runner.measured():
                self._tell(trial_id, values)

    def _tell(self, trial_id: str, values: dict[str, float] | None) -> None:
        if self._searcher is not None:
            self._searcher.tell(trial_id, values)


def _record_checkpoint(store_dir: Path, path: str) -> None:
    """Add a checkpoint's manifest (config, epoch, dev metrics) to the store, attacked or not."""
    from attack_workers.checkpoints import CheckpointInfo, vet_checkpoint
    from attack_workers.store import ResultStore

    info = vet_checkpoint(Path(path))
    if isinstance(info, CheckpointInfo):
        ResultStore(store_dir).write_checkpoint(info.record())
    else:
        log.warning("checkpoint %s is not usable: %s", path, info.error)


class _AttackRunner:
    """A thread that owns the attack pool and attacks submitted checkpoints in arrival order."""

    def __init__(self, attack: AttackSettings, output_dir: Path, progress: bool) -> None:
        from attack_workers.evaluation import EvalConfig
        from attack_workers.store import ResultStore
        from attack_workers.worker import WorkerConfig

        self._attack = attack
        self._store = ResultStore(output_dir / "store")
        self._cache = output_dir / "checkpoints"  # local copies of checkpoints kept in remote storage
        self._eval = EvalConfig(store=str(self._store.root), protocol=attack.protocol, split=attack.split,
                                num_examples=attack.num_examples, seed=attack.seed, params=attack.params,
                                shard_size=attack.shard_size)
        self._worker = WorkerConfig(mlm=attack.mlm, encoder=attack.encoder)
        self._progress = progress
        self._inbox: queue.Queue = queue.Queue()
        self._outbox: queue.Queue = queue.Queue()
        self._drop_queued = False
        self._thread = threading.Thread(target=self._run, name="attack-pipeline", daemon=True)
        self._thread.start()

    def submit(self, jobs: list[_Job]) -> None:
        self._inbox.put(jobs)

    def measured(self) -> list[tuple[str, dict[str, float] | None]]:
        """(trial id, objective values or None) for every objective checkpoint attacked since the last call."""
        out = []
        while not self._outbox.empty():
            out.append(self._outbox.get_nowait())
        return out

    def finish(self, drop_queued: bool) -> None:
        """Wait until everything submitted is attacked (or only the batch in progress); stop the pool."""
        self._drop_queued = drop_queued
        self._inbox.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        from attack_workers.pool import AttackPool, PoolConfig

        pool, error = None, ""
        try:
            pool = AttackPool(self._worker, PoolConfig(num_workers=self._attack.workers,
                                                       gpus_per_worker=self._attack.gpus,
                                                       cpus_per_worker=self._attack.cpus))
        except Exception as exc:  # no pool: every objective that needs an attack is told failed
            error = f"attack workers did not start: {exc}"
            log.error(error)
        try:
            while True:
                items = [self._inbox.get()]
                while not self._inbox.empty():
                    items.append(self._inbox.get_nowait())
                jobs = [job for item in items if item is not _STOP for job in item]
                if jobs and not self._drop_queued:
                    self._attack_jobs(pool, jobs, error)
                if _STOP in items:
                    return
        finally:
            if pool is not None:
                pool.shutdown()

    def _attack_jobs(self, pool: Any, jobs: list[_Job], error: str) -> None:
        from attack_workers.evaluation import plan_evaluation

        local = [self._local_path(job.ref.path) for job in jobs]
        keys: dict[str, tuple[str, str]] = {}  # path -> (checkpoint hash, attack key): one summary row
        summary = pd.DataFrame()
        try:
            plan = plan_evaluation(list(dict.fromkeys(local)), self._eval, self._worker, self._store)
            keys = {t.path: (t.checkpoint_hash, t.attack_key) for t in plan.targets}
            for problem in plan.problems:
                self._record_skipped(problem.path, problem.error)
            if plan.shards and pool is None:
                raise RuntimeError(error)
            if plan.shards:
                pool.run(plan.shards, lambda shard, result: self._store.write_examples(result.rows),
                         self._record_failure, self._progress)
            summary = self._store.load_summary()
        except Exception as exc:  # the sweep goes on; the trials concerned are told failed
            for path in dict.fromkeys(local):
                self._record_skipped(path, f"{type(exc).__name__}: {exc}")
        for job, path in zip(jobs, local):
            if job.tell:
                self._outbox.put((job.ref.trial_id, _objective_values(job.ref, keys.get(path), summary)))

    def _record_skipped(self, path: str, error: str) -> None:
        """A checkpoint that could not be attacked: logged, and kept in the store next to the results."""
        log.error("not attacking %s: %s", path, error)
        self._store.record_skipped_checkpoint(path, error)

    def _record_failure(self, shard: Any, error: str, attempts: int) -> None:
        log.error("attack shard of %s failed after %d attempt(s): %s", shard.target.path, attempts, error)
        self._store.record_failed_shard(shard, error, attempts)

    def _local_path(self, path: str) -> str:
        if "://" not in path:
            return str(Path(path).resolve())
        target = self._cache / path.split("://", 1)[1]
        return tune.Checkpoint(path).to_directory(str(target))


def _objective_values(ref: CheckpointRef, key: tuple[str, str] | None,
                      summary: pd.DataFrame) -> dict[str, float] | None:
    """Training metrics of ``ref`` plus its complete attack's clean and attack accuracy; None if incomplete."""
    if key is None or summary.empty:
        return None
    rows = summary[(summary["checkpoint_hash"] == key[0]) & (summary["attack_key"] == key[1])]
    if rows.empty or rows.iloc[0]["pending_examples"] > 0:
        return None
    return {**ref.metrics, **{k: float(rows.iloc[0][k]) for k in _ATTACK_METRICS}}
