"""Attacks pipelined with training: a Tune callback feeds finished checkpoints to the attack pool.

``AttackPipeline`` sees every checkpoint a trial reports (``on_checkpoint``) and, when the trial
ends, picks the one its objectives are measured on (``best``: the latest epoch that improved the
selection metric; ``last``). It plans each checkpoint as it arrives, with a planner created once
per sweep (``attack_workers.runtime.evaluation.Planner``: it loads the MLM), and queues its shards on an
``attack_workers.AttackPool`` held for the whole sweep. Every checkpoint gets every attack pass of
``sweep.attack.passes`` (a protocol and its attacks; one planner per pass, sharing the loaded MLM),
all on that one pool; the trial's objectives are read from the objective pass
(``sweep.attack.objective``: its union's row, or its only attack's). Tune's own loop drives the pool: every
step polls it without waiting (``on_step_begin``), so Tune keeps scheduling trials while earlier
checkpoints are attacked, and each finished shard's rows go to the results store at once. The
pool's actors hold their own Ray resources, counted against the same cluster as the trials (on
a local Ray, ``tune.sweep`` caps concurrent trials so both fit). When the trials are over
(``on_experiment_end``) the pool grows onto the CPUs/GPUs they freed and attacks what is left.

Every attacked checkpoint lands in the results store as rows of the attack plus its manifest
(the trial's hyperparameters and training metrics); every other local checkpoint is recorded too,
so the store alone draws the accuracy-per-epoch curves. When the objectives are known, the
pipeline tells the Optuna searcher (``tune.search.ObjectiveOptunaSearch``). Resuming is cheap: the
planner skips examples the store already holds, so re-submitting a checkpoint attacks nothing twice.

Trials reported from the store (``tune.study``: their training key was stored) report no checkpoint:
their stored checkpoint is submitted like a trained one (the planner finds its rows and attacks
only what is missing), or, when its directory is gone, its objectives are read from the store.
A trial that trained to the end leaves a training record in the store (``write_training_record``):
what the next sweep over this store looks its key up in. Trials skipped by ``--max-minutes`` or
missing (stored, checkpoint gone) are told failed to the searcher and attack nothing.

Checkpoints that could not be attacked completely are never silent. Expected trouble (a failed
copy from remote storage, a damaged checkpoint, lost workers, failed shards) is recorded in the
store's failures; an unexpected exception (a bug) is logged with its traceback and recorded
nowhere else. Either way the trials waiting for them are told failed, the pipeline goes on with
the next checkpoints, and ``<output_dir>/unattacked.json`` lists every such checkpoint with the
reason when the sweep ends (``unattacked_checkpoints``; ``tune.sweep`` then exits non-zero). An
interrupted sweep finishes the shards running, drops the queued ones and lists their checkpoints;
``--resume`` submits them again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from ray import tune

from tune.config import AttackSettings, SweepSpec
from tune.search import ObjectiveOptunaSearch
from tune.study import (BUDGET_SKIPPED, MISSING, REUSED, REUSED_HASH, REUSED_PATH, TRAINING_KEY,
                        write_training_record)
from tune.trainable import IS_BEST

log = logging.getLogger("tune.pipeline")
_TRAINING_METRICS = ("epoch", "dev_acc", "dev_loss")
_ATTACK_METRICS = ("clean_acc", "attack_acc")
UNATTACKED_FILE = "unattacked.json"
INTERRUPTED_FILE = "interrupted.json"  # the latest run was interrupted: a re-run restores Tune's experiment
_INTERRUPTED = "the sweep was interrupted before it was attacked; --resume attacks it"


@dataclass(frozen=True)
class CheckpointRef:
    trial_id: str
    path: str  # local path, or a URI (s3://...) when Tune's storage is remote
    metrics: dict[str, float]  # the epoch's training metrics (epoch, dev_acc, dev_loss)
    is_best: bool
    stored_hash: str = ""  # a checkpoint reported from the store (tune.study): its content hash


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
    protocol: str = ""  # the attack pass (``_Attacks.submit`` makes one job per pass)


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
                 searcher: ObjectiveOptunaSearch | None, progress: bool = True, training_code: int = 0) -> None:
        self._attack = attack  # resources already fitted to the cluster by tune.sweep
        self._sweep_name = spec.sweep.name
        self._training_code = training_code
        self._wait_for_attack = spec.sweep.needs_attack_results
        self._output_dir = output_dir
        self._searcher = searcher
        self._progress = progress
        self._refs: dict[str, list[CheckpointRef]] = {}
        self._selected: dict[str, CheckpointRef | None] = {}  # finished trials
        self._attacks: _Attacks | None = None
        self._resubmit = False

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks with the experiment; the pool stays out
        return {**self.__dict__, "_attacks": None}

    # ------------------------------------------------------------ Tune hooks

    def setup(self, **info: Any) -> None:
        (self._output_dir / UNATTACKED_FILE).unlink(missing_ok=True)  # an earlier run's: this run decides anew
        (self._output_dir / INTERRUPTED_FILE).unlink(missing_ok=True)
        if self._attack.enabled:
            self._attacks = _Attacks(self._attack, self._output_dir, self._progress)

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: tune.Checkpoint, **info: Any) -> None:
        result = trial.last_result  # Tune updates it before processing the checkpoint reported with it
        ref = CheckpointRef(trial.trial_id, _uri(checkpoint), {k: result[k] for k in _TRAINING_METRICS if k in result},
                            bool(result.get(IS_BEST)))
        self._refs.setdefault(trial.trial_id, []).append(ref)
        if "://" not in ref.path:
            _record_checkpoint(self._output_dir / "store", ref.path)
        if self._attacks and self._attack.checkpoints == "every_epoch":
            self._attacks.submit([_Job(ref, tell=False)])

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        if result.get(BUDGET_SKIPPED) or result.get(MISSING):  # nothing trained, nothing to attack
            self._selected[trial.trial_id] = None
            self._tell(trial.trial_id, None)
            return
        if result.get(REUSED):
            ref = CheckpointRef(trial.trial_id, str(result[REUSED_PATH]),
                                {k: result[k] for k in _TRAINING_METRICS if k in result}, True,
                                str(result[REUSED_HASH]))
            self._selected[trial.trial_id] = ref
            self._measure(trial.trial_id, ref)
            return
        ref = select_checkpoint(self._refs.get(trial.trial_id, []), self._attack.checkpoints)
        self._selected[trial.trial_id] = ref
        if ref is not None and TRAINING_KEY in result and result.get("done", True):  # not stopped by ASHA
            self._record_training(ref, result)
        self._measure(trial.trial_id, ref)

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        """Every turn of Tune's loop: drive the attack pool without waiting, tell what it measured."""
        self._finish_restored()
        if self._attacks:
            self._attacks.poll(0)
        self._tell_finished()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._finish_restored()  # a restored sweep whose trials had all finished runs no step
        interrupted = any(t.status not in ("TERMINATED", "ERROR") for t in trials)
        if interrupted:
            (self._output_dir / INTERRUPTED_FILE).write_text(json.dumps(
                [t.trial_id for t in trials if t.status not in ("TERMINATED", "ERROR")]))
        if self._attacks is None:
            return
        if interrupted:  # a resume re-submits what is dropped here; the store keeps every finished shard
            log.warning("sweep interrupted: finishing the attack shards in progress, dropping queued ones "
                        "(Ctrl+C again stops at once)")
        try:
            self._attacks.finish(interrupted)
        finally:
            self._tell_finished()
            self._write_unattacked(self._attacks.unattacked())

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
        if self._attacks and self._attack.checkpoints == "every_epoch":
            self._attacks.submit([_Job(r, tell=False) for refs in self._refs.values() for r in refs])
        for trial_id, ref in self._selected.items():
            self._measure(trial_id, ref)

    def _measure(self, trial_id: str, ref: CheckpointRef | None) -> None:
        """Attack ``ref`` and tell its objectives now (training-only) or once the attack reports back."""
        if ref is not None and ref.stored_hash and "://" not in ref.path and not Path(ref.path).is_dir():
            # complete in the store (tune.study.decide), its checkpoint gone: nothing to attack
            return self._tell(trial_id, self._stored_objectives(ref))
        wait = self._wait_for_attack and ref is not None
        if self._attacks and ref is not None and (wait or self._attack.checkpoints != "every_epoch"):
            self._attacks.submit([_Job(ref, tell=wait)])
        if not wait:
            self._tell(trial_id, ref.metrics if ref else None)

    def _tell_finished(self) -> None:
        if self._attacks:
            for trial_id, values in self._attacks.measured():
                self._tell(trial_id, values)

    def _tell(self, trial_id: str, values: dict[str, float] | None) -> None:
        if self._searcher is not None:
            self._searcher.tell(trial_id, values)

    def _record_training(self, ref: CheckpointRef, result: dict[str, Any]) -> None:
        """The trial trained its cell to the end: record it (``tune.study``) so no later sweep trains it again.
        A trial ASHA stopped early is not recorded: its config did not train to the end."""
        from attack_workers.runtime.checkpoints import CheckpointInfo, vet_checkpoint

        if "://" in ref.path:  # the store only records checkpoints it can reach (see _record_checkpoint)
            return
        info = vet_checkpoint(Path(ref.path))
        if not isinstance(info, CheckpointInfo):
            return
        metrics = {**ref.metrics, **{k: v for k, v in result.items() if k.startswith("best_test_")}}
        write_training_record(self._output_dir / "store", str(result[TRAINING_KEY]), self._training_code,
                              info.manifest.run_id, info.checkpoint_hash, ref.path, metrics,
                              float(result.get("time_total_s", 0.0)), self._sweep_name)

    def _stored_objectives(self, ref: CheckpointRef) -> dict[str, float] | None:
        """A stored cell's objectives from the store's summary: the objective pass's only attack's row, or its
        union's."""
        from attack_workers.results.store import ResultStore
        from attack_workers.results.keys import UNION

        if not self._attack.enabled:
            return ref.metrics
        summary = ResultStore(self._output_dir / "store").load_summary()
        objective = self._attack.objective_pass
        attack = objective.attacks[0] if len(objective.attacks) == 1 else UNION
        rows = summary[(summary["checkpoint_hash"] == ref.stored_hash) & (summary["attack"] == attack)
                       & (summary["protocol"] == objective.protocol)] if len(summary) else summary
        return _objective_values(ref, rows.iloc[0]) if len(rows) else None

    def _write_unattacked(self, unattacked: list[Unattacked]) -> None:
        if not unattacked:
            return
        lines = "\n".join(f"  trial {u.trial_id}: {u.path}: {u.reason}" for u in unattacked)
        log.error("%d checkpoint(s) were not attacked completely:\n%s", len(unattacked), lines)
        (self._output_dir / UNATTACKED_FILE).write_text(json.dumps([dataclasses.asdict(u) for u in unattacked],
                                                                   indent=2))


def _record_checkpoint(store_dir: Path, path: str) -> None:
    """Add a checkpoint's manifest (config, epoch, dev metrics) to the store, attacked or not."""
    from attack_workers.runtime.checkpoints import CheckpointInfo, vet_checkpoint
    from attack_workers.results.store import ResultStore

    info = vet_checkpoint(Path(path))
    if isinstance(info, CheckpointInfo):
        ResultStore(store_dir).write_checkpoint(info.record())
    else:
        log.warning("checkpoint %s is not usable: %s", path, info.error)


class _Attacks:
    """The sweep's planners and attack pool, driven from Tune's thread: no thread of its own.

    ``submit`` plans a checkpoint at once under each attack pass (the planners share the MLM loaded
    once, in ``__init__``) and queues its shards on the one pool; ``poll`` writes the rows of
    finished shards to the store and settles a checkpoint's pass when its last shard is back.
    Whatever happens, each submitted checkpoint ends attacked or listed in ``unattacked``, and each
    trial waiting for one is told (failed when it was not attacked), so no Optuna trial is left open.
    An unexpected exception (a bug) is logged with its traceback and spoils only the checkpoint at hand.

    Copies from remote storage (only with a URI ``storage_path`` such as ``s3://``) run in Tune's
    thread too: seconds per checkpoint to attack. The shared filesystem the docs recommend for a
    cluster copies nothing, so a thread for them is not worth its locks.
    """

    def __init__(self, attack: AttackSettings, output_dir: Path, progress: bool) -> None:
        from attack_workers.runtime.evaluation import EvalConfig
        from attack_workers.results.store import ResultStore
        from attack_workers.runtime.worker import WorkerConfig

        self._store = ResultStore(output_dir / "store")
        self._cache = output_dir / "checkpoints"  # local copies of checkpoints kept in remote storage
        # one evaluation per attack pass, in the configured order (their shards reach the pool in that order)
        self._evals = [EvalConfig(store=str(self._store.root), protocol=p.protocol, split=attack.split,
                                  num_examples=attack.examples(p), seed=attack.seed, params=attack.params,
                                  shard_size=attack.shard_size, attacks=tuple(p.attacks), skip_broken=p.skip_broken)
                       for p in attack.passes]
        self._objective = attack.objective_pass.protocol  # the pass whose result a waiting trial is told
        self._worker = WorkerConfig(mlm=attack.mlm, encoder=attack.encoder)
        self._attacking: dict[tuple[str, str], _Attack] = {}  # by (checkpoint hash, attack key)
        self._measured: list[tuple[str, dict[str, float] | None]] = []
        self._unattacked: dict[tuple[str, str], Unattacked] = {}  # by (checkpoint path, pass protocol)
        self._planners, self._planner_error = self._start_planners()
        # without planners nothing reaches the pool: no actors are started then
        self._pool, self._pool_error = self._start_pool(attack, progress) if self._planners else (None, "")

    def submit(self, jobs: list[_Job]) -> None:
        """Plan each job's checkpoint under every attack pass and queue its shards; settle a pass now when
        nothing is to attack. Only the objective pass's job tells the trial."""
        for job in jobs:
            passes = [dataclasses.replace(job, tell=job.tell and e.protocol == self._objective, protocol=e.protocol)
                      for e in self._evals]
            try:
                local = self._local_path(job.ref.path)
            except OSError as exc:  # a failed copy from remote storage spoils this checkpoint only
                self._settle(passes, None, self._record_skipped(job.ref.path, f"cannot copy it from storage: {exc}"))
                continue
            except Exception as exc:  # a bug, not the checkpoint's fault: nothing recorded against it in the store
                self._settle(passes, None, _bug(exc, f"attacking {job.ref.path}"))
                continue
            for index, each in enumerate(passes):
                try:
                    self._submit(each, local, self._planners[index] if self._planners else None)
                except Exception as exc:  # a bug, as above
                    self._settle([each], None, _bug(exc, f"attacking {job.ref.path} under {each.protocol}"))

    def poll(self, timeout: float) -> None:
        """Collect what the pool finished within ``timeout`` seconds and give its idle workers more."""
        from ray.exceptions import RayError

        from attack_workers.runtime.pool import WorkerStartError

        if self._pool is None:
            return
        try:
            self._pool.poll(timeout)
        except (WorkerStartError, RayError) as exc:  # no worker could start; the cluster is gone
            self._lose_pool(f"the attack pool failed: {type(exc).__name__}: {exc}", expected=True)
        except Exception as exc:
            self._lose_pool(_bug(exc, "running the attack pool"), expected=False)

    def finish(self, interrupted: bool) -> None:
        """Attack everything submitted (``interrupted``: only the shards running now), then stop the pool.

        Not interrupted, the trials are over: the pool grows onto the resources they freed. If this
        is interrupted too (Ctrl+C again), whatever is not attacked yet is listed as interrupted.
        """
        try:
            if interrupted and self._pool is not None:
                self._drop(self._pool.drop_queued(), _INTERRUPTED)
            while self._pool is not None and self._pool.pending():
                if not interrupted:
                    self._grow()
                self.poll(1.0)
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
            for attack in list(self._attacking.values()):
                attack.shards.clear()
                self._end(attack, _INTERRUPTED)

    def measured(self) -> list[tuple[str, dict[str, float] | None]]:
        """(trial id, objective values or None) for every objective checkpoint settled since the last call."""
        out, self._measured = self._measured, []
        return out

    def unattacked(self) -> list[Unattacked]:
        """Checkpoints submitted but not attacked completely, with the reason (each pass's, named by its protocol
        when the passes differ); complete after ``finish``."""
        by_path: dict[str, list[tuple[str, Unattacked]]] = {}
        for (path, protocol), u in self._unattacked.items():
            by_path.setdefault(path, []).append((protocol, u))
        out = []
        for failed in by_path.values():
            reasons = {u.reason for _, u in failed}
            reason = (reasons.pop() if len(failed) == len(self._evals) and len(reasons) == 1  # every pass, one cause
                      else "; ".join(f"{protocol}: {u.reason}" for protocol, u in failed))
            out.append(dataclasses.replace(failed[0][1], reason=reason))
        return out

    # ------------------------------------------------------------ starting

    def _start_planners(self) -> tuple[list[Any], str]:
        """(one planner per attack pass, '') or ([], why they did not start): every checkpoint is then listed
        unattacked. The first loads the MLM; the others share it (``Planner.with_config``)."""
        from attack_workers.runtime.checkpoints import EvaluationError
        from attack_workers.runtime.evaluation import Planner

        try:
            first = Planner(self._evals[0], self._worker)
            return [first, *(first.with_config(config) for config in self._evals[1:])], ""
        except (OSError, EvaluationError) as exc:  # a missing MLM or encoder, unusable settings
            log.error("the attack planner did not start: %s", exc)
            return [], f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            return [], _bug(exc, "starting the attack planner")

    def _start_pool(self, attack: AttackSettings, progress: bool) -> tuple[Any, str]:
        """(the pool, its actors starting in the background, '') or (None, why it did not start)."""
        from ray.exceptions import RayError

        from attack_workers.runtime.pool import AttackPool, PoolConfig, WorkerStartError

        config = PoolConfig(num_workers=attack.workers, gpus_per_worker=attack.gpus, cpus_per_worker=attack.cpus)
        try:
            return AttackPool(self._worker, config, wait=False, progress=progress), ""
        except (WorkerStartError, RayError) as exc:
            log.error("attack workers did not start: %s", exc)
            return None, f"attack workers did not start: {exc}"
        except Exception as exc:
            return None, _bug(exc, "starting the attack workers")

    def _lose_pool(self, reason: str, expected: bool) -> None:
        """The pool is unusable: the checkpoints on it, and every later one with shards, are unattacked."""
        shards = self._pool.abandon()
        self._pool.shutdown()
        self._pool, self._pool_error = None, reason
        if expected:
            for path in dict.fromkeys(shard.target.path for shard in shards):
                self._record_skipped(path, reason)
        self._drop(shards, reason)

    def _grow(self) -> None:
        """The trials are over: take the CPUs/GPUs they freed, up to one worker per pending shard."""
        target = min(self._pool.workers_that_fit(), self._pool.pending())
        if target > self._pool.num_workers:
            log.info("attack pool: %d -> %d workers, trials finished", self._pool.num_workers, target)
            self._pool.resize(target)

    # ------------------------------------------------------------ checkpoints

    def _submit(self, job: _Job, local: str, planner: Any) -> None:
        """Plan ``job``'s pass on the checkpoint at ``local`` with that pass's ``planner`` and queue its shards.
        Expected trouble settles ``job`` unattacked here, recorded in the store; bugs propagate."""
        from attack_workers.results.keys import union_row_key
        from attack_workers.runtime.checkpoints import EvaluationError, find_checkpoints

        if planner is None:
            return self._settle([job], None, self._record_skipped(local, self._planner_error))
        try:
            plan = planner.plan(find_checkpoints([local]), self._store)
        except (OSError, EvaluationError) as exc:  # storage trouble; no checkpoint there
            return self._settle([job], None, self._record_skipped(local, f"{type(exc).__name__}: {exc}"))
        if plan.problems:  # damaged, or does not match its dataset or the MLM
            return self._settle([job], None, self._record_skipped(local, plan.problems[0].error))
        keys = [(t.checkpoint_hash, t.attack_key) for t in plan.targets]  # one per attack
        # the objectives come from the only attack, or from the union of several: the summary's union row,
        # keyed by its attacks' union key and the set of attacks (the store's union_row_key)
        first = plan.targets[0]
        key = keys[0] if len(keys) == 1 else (
            first.checkpoint_hash, union_row_key(first.union_key, [t.attack for t in plan.targets]))
        if keys[0] in self._attacking:  # its shards are out already (submitted before, or the same content elsewhere)
            self._attacking[keys[0]].jobs.append(job)
            return
        if not plan.shards:  # the store holds every example
            return self._settle([job], key, keys=keys)
        if self._pool is None:
            return self._settle([job], None, self._record_skipped(local, self._pool_error))
        attack = _Attack(key, [job], {shard.shard_id for shard in plan.shards}, keys=keys)
        for each in keys:
            self._attacking[each] = attack
        self._pool.submit(plan.shards, self._on_result, self._on_failure)

    def _on_result(self, shard: Any, result: Any) -> None:
        self._shard_ended(shard, lambda: self._store.write_results(result.rows))

    def _on_failure(self, shard: Any, error: str, attempts: int) -> None:
        log.error("attack shard of %s failed after %d attempt(s): %s", shard.target.path, attempts, error)
        self._shard_ended(shard, lambda: self._store.record_failed_shard(shard, error, attempts))

    def _shard_ended(self, shard: Any, write: Callable[[], Any]) -> None:
        """Store what ``shard`` left (``write``); settle its checkpoint if it was the last shard out."""
        attack = self._attacking[(shard.target.checkpoint_hash, shard.target.attack_key)]
        try:
            write()
        except Exception as exc:  # the store cannot take it: this checkpoint is not attacked completely
            attack.reason = attack.reason or _trouble(exc, f"storing a shard of {shard.target.path}")
        attack.shards.discard(shard.shard_id)
        if not attack.shards:
            self._end(attack)

    def _drop(self, shards: list[Any], reason: str) -> None:
        """``shards`` will not be attacked: their checkpoints end unattacked for ``reason``."""
        for shard in shards:
            attack = self._attacking[(shard.target.checkpoint_hash, shard.target.attack_key)]
            attack.reason = attack.reason or reason
            attack.shards.discard(shard.shard_id)
            if not attack.shards:
                self._end(attack)

    def _end(self, attack: _Attack, reason: str = "") -> None:
        for key in attack.keys or [attack.key]:
            self._attacking.pop(key, None)
        self._settle(attack.jobs, attack.key, reason or attack.reason, keys=attack.keys)

    def _settle(self, jobs: list[_Job], key: tuple[str, str] | None, reason: str = "",
                keys: list[tuple[str, str]] | None = None) -> None:
        """Record whether the jobs' checkpoint is attacked completely; queue the objectives of the
        trials that wait for it. Interrupted ones are not told: a resume measures them. ``key``: the
        summary row of the objectives (an attack's, or the union's of ``keys``, every attack of it)."""
        row, why = None, reason
        if not reason:
            try:
                summary = self._store.load_summary(keys or ([key] if key else []))
                row, why = _complete_attack(key, summary)
                for each in keys or []:  # every attack of a union complete, not only the union's examples
                    member, member_why = _complete_attack(each, summary) if row is not None else (row, why)
                    if member is None:
                        row, why = None, member_why
            except Exception as exc:
                why = _trouble(exc, "reading the store's summary")
        for job in jobs:
            if row is None:
                self._unattacked[(job.ref.path, job.protocol)] = Unattacked(job.ref.trial_id, job.ref.path, why)
            else:  # attacked now, or an earlier submission of it was incomplete and this one finished it
                self._unattacked.pop((job.ref.path, job.protocol), None)
            if job.tell and why != _INTERRUPTED:
                self._measured.append((job.ref.trial_id, None if row is None else _objective_values(job.ref, row)))

    def _record_skipped(self, path: str, error: str) -> str:
        """A checkpoint that could not be attacked: logged, and kept in the store next to the results."""
        log.error("not attacking %s: %s", path, error)
        self._store.record_skipped_checkpoint(path, error)
        return error

    def _local_path(self, path: str) -> str:
        if "://" not in path:
            return str(Path(path).resolve())
        target = self._cache / path.split("://", 1)[1]
        return tune.Checkpoint(path).to_directory(str(target))


@dataclass(eq=False)
class _Attack:
    """A checkpoint whose shards are out on the pool, and the jobs that wait for it."""

    key: tuple[str, str]  # (checkpoint hash, attack key), or (checkpoint hash, union key) for several attacks
    jobs: list[_Job]
    shards: set[str]  # ids of the shards not reported yet
    reason: str = ""  # why it cannot end complete, when the cause is not a failed shard (those are in the store)
    keys: list[tuple[str, str]] | None = None  # (checkpoint hash, attack key) of every attack


def _trouble(exc: Exception, doing: str) -> str:
    """The reason a checkpoint is not attacked after ``exc``: storage trouble is logged as an error,
    anything else is a bug (``_bug``)."""
    if isinstance(exc, OSError):
        log.error("%s: %s: %s", doing, type(exc).__name__, exc)
        return f"{type(exc).__name__}: {exc}"
    return _bug(exc, doing)


def _bug(exc: Exception, doing: str) -> str:
    """Log an unexpected exception with its traceback (call it from the ``except`` block); the reason
    its checkpoints are listed unattacked with."""
    log.exception("attack pipeline error while %s", doing)
    return f"attack pipeline error {type(exc).__name__}: {exc} (see the traceback in the log)"


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
