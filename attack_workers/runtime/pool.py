"""A pool of Ray actors, one ``AttackWorker`` each, fed shards with ``ray.wait``.

The pool never blocks its caller except in ``poll(timeout)``: ``submit`` queues shards at any time
(also while others run), ``poll`` hands queued shards to idle actors and reports the ones that
ended, ``resize`` starts or retires actors. A Tune callback drives it from Tune's own loop that
way; ``run`` is the blocking loop over ``submit`` and ``poll`` that the CLI uses.

Scheduling: each actor runs one shard at a time. An idle actor gets the next shard of the
checkpoint it already holds (loading a classifier costs seconds); when that checkpoint has no
shards left it takes the checkpoint with the most pending shards per actor already on it, so
several checkpoints progress at once. A new actor gets shards once it has loaded its models.

Faults: an actor that dies (OOM, killed node, ``ray.kill``) is replaced and its shard goes back
to the queue, to whichever actor is free first, up to ``max_retries`` times. An exception raised
by the attack itself is deterministic: the shard is reported failed at once and the pool goes on.
An actor that fails to start is dropped with a warning; only when no actor is left does ``poll``
raise ``WorkerStartError``. The pool reports every outcome through the callbacks given with the
shards as it happens (the caller writes the store), so an interruption loses at most the shards
in flight.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import RayError, RayTaskError
from tqdm.auto import tqdm

from attack_workers.runtime.shards import Shard, ShardResult
from attack_workers.runtime.worker import AttackWorker, WorkerConfig

log = logging.getLogger("attack_workers")
OnResult = Callable[[Shard, ShardResult], None]
OnFailure = Callable[[Shard, str, int], None]  # (shard, error, attempts)


class WorkerStartError(RuntimeError):
    """Attack workers could not start (their ``__init__`` failed); the message has the cause."""


@dataclass(frozen=True)
class PoolConfig:
    num_workers: int | None = None  # None: one per GPU when the cluster has GPUs, else one per CPU
    gpus_per_worker: float | None = None  # None: 1 when the cluster has GPUs; fractions share a GPU
    cpus_per_worker: float = 1.0
    max_retries: int = 2  # re-runs of a shard whose actor died; deterministic errors are never retried


@dataclass
class PoolStats:
    shards_done: int = 0
    shards_failed: int = 0
    examples_done: int = 0
    actor_deaths: int = 0
    retries: int = 0
    workers: int = 0

    def since(self, earlier: PoolStats) -> PoolStats:
        """What happened after ``earlier`` was taken (``workers``: the current count)."""
        counts = {f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in dataclasses.fields(self)}
        return PoolStats(**{**counts, "workers": self.workers})


@dataclass
class _Task:
    """A submitted shard, the callbacks that report it, and how many times it was run."""

    shard: Shard
    on_result: OnResult
    on_failure: OnFailure
    attempts: int = 0


@dataclass(eq=False)
class _Slot:
    """One actor and what it is doing: starting, idle, or running one task."""

    handle: Any
    starting: Any = None  # the ref of its ``describe`` call until the actor has started
    checkpoint: str | None = None  # hash of the checkpoint it last attacked (it still holds that model)
    task: _Task | None = None
    ref: Any = None  # the ref of its ``attack_shard`` call while it runs ``task``
    retiring: bool = False  # leaves the pool once its current shard is done


def fitting_workers(resources: Mapping[str, float], cpus_per_worker: float, gpus_per_worker: float) -> int:
    """How many workers of ``cpus_per_worker`` CPU and ``gpus_per_worker`` GPU ``resources`` hold."""
    needs = [(resources.get("CPU", 0.0), cpus_per_worker), (resources.get("GPU", 0.0), gpus_per_worker)]
    counts = [int(math.floor(have / need + 1e-9)) for have, need in needs if need > 0]
    return min(counts) if counts else int(resources.get("CPU", 0.0))  # needing nothing: one per CPU


def worker_resources(config: PoolConfig) -> tuple[int, float, float]:
    """(number of workers, GPUs per worker, CPUs per worker) for the connected Ray cluster."""
    resources = ray.cluster_resources()
    gpus, cpus = resources.get("GPU", 0.0), resources.get("CPU", 0.0)
    gpus_per_worker = config.gpus_per_worker if config.gpus_per_worker is not None else (1.0 if gpus else 0.0)
    count = config.num_workers
    if count is None:
        count = fitting_workers(resources, config.cpus_per_worker, gpus_per_worker)
    if count < 1:
        raise WorkerStartError(f"the Ray cluster ({cpus:g} CPU, {gpus:g} GPU) fits no worker needing "
                               f"{config.cpus_per_worker:g} CPU and {gpus_per_worker:g} GPU; lower "
                               "--gpus-per-worker / --cpus-per-worker or add nodes")
    return count, gpus_per_worker, config.cpus_per_worker


class AttackPool:
    """Start with ``AttackPool(worker_config, pool_config)``, feed with ``submit``/``poll`` or ``run``,
    end with ``shutdown``.

    ``wait``: block until the actors have started (``WorkerStartError`` now if none can); else they
    start in the background and ``poll`` reports a failed start. ``progress``: show a progress bar
    while the pool has work; its total grows as shards are submitted.
    """

    def __init__(self, worker_config: WorkerConfig, config: PoolConfig = PoolConfig(),
                 max_workers: int | None = None, wait: bool = True, progress: bool = True) -> None:
        count, gpus, cpus = worker_resources(config)
        if max_workers is not None:
            count = max(1, min(count, max_workers))
        self.config = config
        self.progress = progress
        self.stats = PoolStats()
        self._gpus, self._cpus = gpus, cpus
        self._actor_class = ray.remote(AttackWorker).options(
            num_cpus=cpus, num_gpus=gpus, max_restarts=0, max_task_retries=0)
        self.worker_config = dataclasses.replace(worker_config, num_threads=max(1, int(cpus)))
        self._slots: list[_Slot] = []
        self._queues: dict[str, deque[_Task]] = defaultdict(deque)  # by checkpoint hash
        self._bar: Any = None
        self._start(count)
        if wait:
            try:
                self._wait_started()
            except BaseException:
                self.shutdown()
                raise

    # ------------------------------------------------------------ state

    @property
    def num_workers(self) -> int:
        """Actors that are in the pool or starting (not those retiring after their current shard)."""
        return sum(not slot.retiring for slot in self._slots)

    def in_flight(self) -> list[tuple[Any, Shard]]:
        """(actor handle, shard) for every shard being attacked right now."""
        return [(slot.handle, slot.task.shard) for slot in self._slots if slot.task is not None]

    def pending(self) -> int:
        """Shards submitted and not reported yet (queued or running)."""
        return sum(map(len, self._queues.values())) + len(self.in_flight())

    def workers_that_fit(self) -> int:
        """Workers that the cluster's free resources plus those of the pool's started actors would hold,
        at most what the whole cluster holds. An actor still starting counts for nothing: once placed
        its resources are no longer free, so nothing is counted twice (growth waits until it has started)."""
        started = sum(slot.starting is None for slot in self._slots)
        free = ray.available_resources()
        held = {name: free.get(name, 0.0) + started * need
                for name, need in (("CPU", self._cpus), ("GPU", self._gpus))}
        return min(fitting_workers(held, self._cpus, self._gpus),
                   fitting_workers(ray.cluster_resources(), self._cpus, self._gpus))

    # ------------------------------------------------------------ feeding

    def submit(self, shards: Sequence[Shard], on_result: OnResult, on_failure: OnFailure) -> None:
        """Queue ``shards``; ``on_result(shard, result)`` or ``on_failure(shard, error, attempts)``
        fires once for each, from ``poll``."""
        for shard in shards:
            self._queues[shard.target.checkpoint_hash].append(_Task(shard, on_result, on_failure))
        if shards:
            self._progress_bar().total += sum(len(s.examples) for s in shards)
            self._bar.refresh()

    def poll(self, timeout: float | None) -> None:
        """Hand queued shards to idle actors, wait up to ``timeout`` seconds (None: until one ends)
        for a running shard or a starting actor, and report everything that ended."""
        self._dispatch()
        waiting = {slot.starting if slot.starting is not None else slot.ref: slot
                   for slot in self._slots if slot.starting is not None or slot.ref is not None}
        if waiting:
            ready, _ = ray.wait(list(waiting), num_returns=1, timeout=timeout)
            if ready:  # everything else that ended meanwhile too
                ready, _ = ray.wait(list(waiting), num_returns=len(waiting), timeout=0)
            for slot in [waiting[ref] for ref in ready]:
                if slot.starting is not None:
                    if slot in self._slots:  # not retired by a callback meanwhile
                        self._started(slot)
                elif slot.ref is not None:  # not abandoned by a callback meanwhile
                    self._collect(slot)
        self._dispatch()
        self._show()

    def run(self, shards: Sequence[Shard], on_result: OnResult, on_failure: OnFailure,
            progress: bool = True) -> PoolStats:
        """Attack every shard and return when the pool has nothing left (the blocking use of
        ``submit`` + ``poll``). On an exception (Ctrl+C, a callback raising) whatever is queued or
        running is forgotten: no callback fires for it later."""
        before = dataclasses.replace(self.stats)
        self.progress = progress
        self.submit(shards, on_result, on_failure)
        try:
            while self.pending():
                self.poll(None)
        except BaseException:
            self.abandon()
            raise
        return self.stats.since(before)

    def drop_queued(self) -> list[Shard]:
        """Take back every shard not running yet (their callbacks never fire); running ones go on."""
        dropped = [task.shard for queue in self._queues.values() for task in queue]
        self._queues.clear()
        if self._bar is not None:
            self._bar.total -= sum(len(s.examples) for s in dropped)
        self._show()
        return dropped

    def abandon(self) -> list[Shard]:
        """Forget every queued and running shard (no callback fires for them); the actors stay.

        An abandoned shard still running keeps its actor busy: the actor's next shard waits behind it.
        """
        dropped = self.drop_queued()
        for slot in self._slots:
            if slot.task is not None:
                dropped.append(slot.task.shard)
                slot.task = slot.ref = None
        self._close_bar()
        return dropped

    def resize(self, count: int, wait: bool = False) -> None:
        """Grow to ``count`` workers or shrink to it: idle actors leave now, busy ones after their current
        shard. New actors start in the background (``poll`` hands them shards once they have started)
        unless ``wait``: then this polls (as ``poll`` does) until they have started."""
        if count < 1:
            raise ValueError(f"count={count}: a pool needs at least one worker")
        staying = [slot for slot in self._slots if not slot.retiring]
        self._start(count - len(staying))
        # Kept first: busy actors (their shard goes on), then idle ones (models loaded), then those still
        # starting; the slice past ``count`` leaves. The sort is stable: among equals, the oldest stay.
        for slot in sorted(staying, key=_retirement_rank)[count:]:
            slot.retiring = True
            if slot.task is None:
                self._remove(slot)
        self.stats.workers = self.num_workers
        if wait:
            self._wait_started()

    def shutdown(self) -> None:
        """Stop every actor of the pool; queued shards are dropped."""
        for slot in self._slots:
            ray.kill(slot.handle, no_restart=True)
        self._slots = []
        self._queues.clear()
        self._close_bar()

    def __enter__(self) -> AttackPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    # ------------------------------------------------------------ actors

    def _start(self, count: int) -> None:
        for _ in range(count):
            handle = self._actor_class.remote(self.worker_config)
            self._slots.append(_Slot(handle, starting=handle.describe.remote()))
        self.stats.workers = self.num_workers

    def _wait_started(self) -> None:
        while any(slot.starting is not None for slot in self._slots):
            self.poll(None)

    def _started(self, slot: _Slot) -> None:
        """``slot``'s actor answered ``describe``: it takes shards from now on, or it failed to start."""
        ref, slot.starting = slot.starting, None
        try:
            ray.get(ref)
        except RayError as exc:  # its __init__ raised, or it died on the way
            self._remove(slot)
            if not self.num_workers:
                raise WorkerStartError(f"attack workers failed to start: {exc}") from None
            log.warning("an attack worker failed to start; going on with %d: %s", self.num_workers, exc)

    def _replace(self, slot: _Slot) -> None:
        """A dead actor: a new one takes its place (a retiring one just leaves)."""
        if slot.retiring:
            self._remove(slot)
            return
        ray.kill(slot.handle, no_restart=True)  # already dead in most cases; makes sure it is
        slot.handle = self._actor_class.remote(self.worker_config)
        slot.starting, slot.checkpoint = slot.handle.describe.remote(), None

    def _remove(self, slot: _Slot) -> None:
        ray.kill(slot.handle, no_restart=True)
        self._slots.remove(slot)
        self.stats.workers = self.num_workers

    # ------------------------------------------------------------ shards

    def _dispatch(self) -> None:
        for slot in self._slots:
            if slot.starting is None and slot.task is None and not slot.retiring and self._has_queued():
                slot.task = self._next_task(slot)
                slot.ref = slot.handle.attack_shard.remote(slot.task.shard)

    def _has_queued(self) -> bool:
        return any(self._queues.values())

    def _next_task(self, slot: _Slot) -> _Task:
        if slot.checkpoint and self._queues.get(slot.checkpoint):
            return self._queues[slot.checkpoint].popleft()
        busy: dict[str, int] = defaultdict(int)
        for other in self._slots:
            if other.task is not None:
                busy[other.task.shard.target.checkpoint_hash] += 1
        best = max((c for c, q in self._queues.items() if q), key=lambda c: len(self._queues[c]) / (1 + busy[c]))
        return self._queues[best].popleft()

    def _collect(self, slot: _Slot) -> None:
        """``slot``'s shard ended: report it, or re-queue it when its actor died. The slot is updated
        before any callback fires, so a callback that raises leaves the pool consistent."""
        task, ref = slot.task, slot.ref
        slot.task = slot.ref = None
        task.attempts += 1
        try:
            result = ray.get(ref)
        except RayTaskError as exc:  # the attack raised: deterministic, do not retry
            self._retire_if_asked(slot)
            self._fail(task, _cause(exc))
        except RayError as exc:  # the actor is gone (killed, OOM, node lost): replace it, retry the shard
            self.stats.actor_deaths += 1
            self._replace(slot)
            if task.attempts > self.config.max_retries:
                self._fail(task, f"worker died {task.attempts} times; last: {exc}")
            else:
                self.stats.retries += 1
                self._queues[task.shard.target.checkpoint_hash].appendleft(task)
        else:
            slot.checkpoint = task.shard.target.checkpoint_hash
            self._retire_if_asked(slot)
            self.stats.shards_done += 1
            self.stats.examples_done += len(task.shard.examples)
            self._advance(task.shard)
            task.on_result(task.shard, result)

    def _retire_if_asked(self, slot: _Slot) -> None:
        if slot.retiring:
            self._remove(slot)

    def _fail(self, task: _Task, error: str) -> None:
        self.stats.shards_failed += 1
        self._advance(task.shard)
        task.on_failure(task.shard, error, task.attempts)

    # ------------------------------------------------------------ progress bar

    def _progress_bar(self) -> Any:
        if self._bar is None:
            self._bar = tqdm(total=0, unit="ex", desc="attack", disable=not self.progress, dynamic_ncols=True)
        return self._bar

    def _advance(self, shard: Shard) -> None:
        if self._bar is not None:
            self._bar.update(len(shard.examples))

    def _show(self) -> None:
        """Refresh the bar; close it when the pool has nothing left (the next submission opens another)."""
        if self._bar is None:
            return
        if not self.pending():
            self._close_bar()
            return
        self._bar.set_postfix(workers=self.num_workers, failed=self.stats.shards_failed,
                              retried=self.stats.retries)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _retirement_rank(slot: _Slot) -> int:
    """0 for a busy actor, 1 for an idle one, 2 for one still starting: a shrinking pool retires the highest first."""
    if slot.task is not None:
        return 0
    return 1 if slot.starting is None else 2


def _cause(exc: RayTaskError) -> str:
    """The original exception of a failed actor task, as 'Type: message'."""
    cause = exc.cause if getattr(exc, "cause", None) is not None else exc
    return f"{type(cause).__name__}: {cause}"
