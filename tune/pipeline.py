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

Checkpoints that could not be attacked completely are never silent. Expected trouble (a failed
copy from remote storage, a damaged checkpoint, lost workers, failed shards) is recorded in the
store's failures; an unexpected exception (a bug) is logged with its traceback and recorded
nowhere else. Either way the trials waiting for them are told failed, the thread goes on with the
next checkpoints, and ``<output_dir>/unattacked.json`` lists every such checkpoint with the
reason when the sweep ends (``unattacked_checkpoints``; ``tune.sweep`` then exits non-zero).
"""

from __future__ import annotations

import dataclasses
import json
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
UNATTACKED_FILE = "unattacked.json"
_INTERRUPTED = "the sweep was interrupted before it was attacked; --resume attacks it"


@dataclass(frozen=True)
class CheckpointRef:
    trial_id: str
    path: str  # local path, or a URI (s3://...) when Tune's storage is remote
    metrics: dict[str, float]  # the epoch's training metrics (epoch, dev_acc, dev_loss)
    is_best: bool


@dataclass(frozen=True)
class Unattacked:
    """A checkpoint the sweep could not attack completely, and why."""

    trial_id: str
    path: str
    reason: str


def unattacked_checkpoints(output_dir: Path) -> list[Unattacked]:
    """The checkpoints the latest run of the sweep in ``output_dir`` left unattacked (empty when none)."""
    path = output_dir / UNATTACKED_FILE
    return [Unattacked(**u) for u in json.loads(path.read_text())] if path.exists() else []


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
        (self._output_dir / UNATTACKED_FILE).unlink(missing_ok=True)  # an earlier run's: this run decides anew
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
        self._write_unattacked(self._runner.unattacked())

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

    def _write_unattacked(self, unattacked: list[Unattacked]) -> None:
        if not unattacked:
            return
        lines = "\n".join(f"  trial {u.trial_id}: {u.path}: {u.reason}" for u in unattacked)
        log.error("%d checkpoint(s) were not attacked completely:\n%s", len(unattacked), lines)
        (self._output_dir / UNATTACKED_FILE).write_text(json.dumps([dataclasses.asdict(u) for u in unattacked],
                                                                   indent=2))


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
    """A thread that owns the attack pool and attacks submitted checkpoints in arrival order.

    Whatever happens to a batch, each of its checkpoints ends attacked or listed in ``unattacked``,
    and each trial waiting for one is told (failed when it was not attacked), so the thread never
    stops early and no Optuna trial is left open.
    """

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
        self._unattacked: dict[str, Unattacked] = {}  # by checkpoint path; the thread's until finish() returns
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

    def unattacked(self) -> list[Unattacked]:
        """Checkpoints submitted but not attacked completely, with the reason; complete after ``finish``."""
        return list(self._unattacked.values())

    def _run(self) -> None:
        pool, pool_error = self._start_pool()
        try:
            while True:
                items = [self._inbox.get()]
                while not self._inbox.empty():
                    items.append(self._inbox.get_nowait())
                jobs = [job for item in items if item is not _STOP for job in item]
                if jobs:
                    self._process(pool, jobs, pool_error)
                if _STOP in items:
                    return
        finally:
            if pool is not None:
                pool.shutdown()

    def _start_pool(self) -> tuple[Any, str]:
        """(the pool, '') or (None, why it did not start): every checkpoint is then listed unattacked."""
        from ray.exceptions import RayError

        from attack_workers.pool import AttackPool, PoolConfig, WorkerStartError

        config = PoolConfig(num_workers=self._attack.workers, gpus_per_worker=self._attack.gpus,
                            cpus_per_worker=self._attack.cpus)
        try:
            return AttackPool(self._worker, config), ""
        except (WorkerStartError, RayError) as exc:
            error = f"attack workers did not start: {exc}"
            log.error(error)
        except Exception as exc:  # a bug: its traceback is logged; the checkpoints are still listed unattacked
            log.exception("attack workers did not start")
            error = f"attack workers did not start: {type(exc).__name__}: {exc} (a bug: see the traceback in the log)"
        return None, error

    def _process(self, pool: Any, jobs: list[_Job], pool_error: str) -> None:
        """Attack ``jobs``; list those not attacked completely; tell the trials that wait for them."""
        if self._drop_queued:  # interrupted: the trials are not told, a resume re-submits and measures them
            for job in jobs:
                self._unattacked[job.ref.path] = Unattacked(job.ref.trial_id, job.ref.path, _INTERRUPTED)
            return
        try:
            reasons, keys, summary = self._attack_jobs(pool, jobs, pool_error)
        except Exception as exc:  # a bug, not the checkpoints' fault: nothing recorded against them in the store
            log.exception("attack pipeline error while attacking %s", ", ".join(job.ref.path for job in jobs))
            reason = f"attack pipeline error {type(exc).__name__}: {exc} (see the traceback in the log)"
            reasons, keys, summary = {job.ref.path: reason for job in jobs}, {}, pd.DataFrame()
        for job in jobs:
            self._settle(job, reasons.get(job.ref.path), keys.get(job.ref.path), summary)

    def _attack_jobs(self, pool: Any, jobs: list[_Job], pool_error: str
                     ) -> tuple[dict[str, str], dict[str, tuple[str, str]], pd.DataFrame]:
        """(why each checkpoint path was not attacked, its (checkpoint hash, attack key) if it was, store summary).

        Expected trouble (storage, lost workers, unusable checkpoints) is recorded in the store's
        failures; any other exception is a bug and propagates.
        """
        local, reasons = self._local_copies(jobs)
        problems, keys, summary = self._attack_local(pool, list(dict.fromkeys(local.values())), pool_error)
        for path, error in problems.items():
            self._record_skipped(path, error)
        reasons.update({ref: problems[path] for ref, path in local.items() if path in problems})
        return reasons, {ref: keys[path] for ref, path in local.items() if path in keys}, summary

    def _local_copies(self, jobs: list[_Job]) -> tuple[dict[str, str], dict[str, str]]:
        """(checkpoint path -> local directory, checkpoint path -> why it could not be copied from storage)."""
        local: dict[str, str] = {}
        failed: dict[str, str] = {}
        for job in jobs:
            try:
                local[job.ref.path] = self._local_path(job.ref.path)
            except OSError as exc:  # a failed copy from remote storage spoils this checkpoint only
                failed[job.ref.path] = self._record_skipped(job.ref.path, f"cannot copy it from storage: {exc}")
        return local, failed

    def _attack_local(self, pool: Any, paths: list[str], pool_error: str
                      ) -> tuple[dict[str, str], dict[str, tuple[str, str]], pd.DataFrame]:
        """Attack the checkpoint directories ``paths``: (problems by path, (hash, attack key) by path, summary)."""
        from ray.exceptions import RayError

        from attack_workers.checkpoints import EvaluationError
        from attack_workers.evaluation import plan_evaluation

        if not paths:
            return {}, {}, pd.DataFrame()
        try:
            plan = plan_evaluation(paths, self._eval, self._worker, self._store)
            problems = {p.path: p.error for p in plan.problems}
            if pool is None:  # only checkpoints the store already holds complete are measured
                problems.update({s.target.path: pool_error for s in plan.shards})
            keys = {t.path: (t.checkpoint_hash, t.attack_key) for t in plan.targets if t.path not in problems}
            if plan.shards and pool is not None:
                pool.run(plan.shards, lambda shard, result: self._store.write_examples(result.rows),
                         self._record_failure, self._progress)
            return problems, keys, self._store.load_summary()
        except (OSError, RayError, EvaluationError) as exc:  # storage or cluster trouble: this batch is lost
            return dict.fromkeys(paths, f"{type(exc).__name__}: {exc}"), {}, pd.DataFrame()

    def _settle(self, job: _Job, reason: str | None, key: tuple[str, str] | None, summary: pd.DataFrame) -> None:
        """Record whether ``job``'s checkpoint is attacked completely; queue its objectives if a trial waits."""
        row, why = (None, reason) if reason else _complete_attack(key, summary)
        if row is None:
            self._unattacked[job.ref.path] = Unattacked(job.ref.trial_id, job.ref.path, why)
        else:  # attacked now, or an earlier submission of it was incomplete and this one finished it
            self._unattacked.pop(job.ref.path, None)
        if job.tell:
            self._outbox.put((job.ref.trial_id, None if row is None else _objective_values(job.ref, row)))

    def _record_skipped(self, path: str, error: str) -> str:
        """A checkpoint that could not be attacked: logged, and kept in the store next to the results."""
        log.error("not attacking %s: %s", path, error)
        self._store.record_skipped_checkpoint(path, error)
        return error

    def _record_failure(self, shard: Any, error: str, attempts: int) -> None:
        log.error("attack shard of %s failed after %d attempt(s): %s", shard.target.path, attempts, error)
        self._store.record_failed_shard(shard, error, attempts)

    def _local_path(self, path: str) -> str:
        if "://" not in path:
            return str(Path(path).resolve())
        target = self._cache / path.split("://", 1)[1]
        return tune.Checkpoint(path).to_directory(str(target))


def _complete_attack(key: tuple[str, str] | None, summary: pd.DataFrame) -> tuple[pd.Series | None, str]:
    """The store's summary row of a complete attack of ``key``, or None and why it is not complete."""
    rows = summary if key is None or summary.empty else summary[
        (summary["checkpoint_hash"] == key[0]) & (summary["attack_key"] == key[1])]
    if key is None or rows.empty:
        return None, "the store holds no attack of it (see the store's failures)"
    pending = int(rows.iloc[0]["pending_examples"])
    if pending:
        return None, f"{pending} example(s) not attacked: their shards failed (see the store's failures)"
    return rows.iloc[0], ""


def _objective_values(ref: CheckpointRef, row: pd.Series) -> dict[str, float]:
    """Training metrics of ``ref`` plus its complete attack's clean and attack accuracy."""
    return {**ref.metrics, **{k: float(row[k]) for k in _ATTACK_METRICS}}
