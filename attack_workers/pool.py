"""A pool of Ray actors, one ``AttackWorker`` each, fed shards with ``ray.wait``.

Scheduling: each actor runs one shard at a time. An idle actor gets the next shard of the
checkpoint it already holds (loading a classifier costs seconds); when that checkpoint has no
shards left it takes the checkpoint with the most pending shards per actor already on it, so
several checkpoints progress at once.

Faults: an actor that dies (OOM, killed node, ``ray.kill``) is replaced and its shard goes back
to the queue, to whichever actor is free first, up to ``max_retries`` times. An exception raised
by the attack itself is deterministic: the shard is reported failed at once and the pool goes on.
The pool reports every outcome through callbacks as it happens (the caller writes the store), so
an interrupted run has lost at most the shards in flight.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError, RayTaskError
from tqdm.auto import tqdm

from attack_workers.shards import Shard, ShardResult
from attack_workers.worker import AttackWorker, WorkerConfig


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


@dataclass
class _Slot:
    """One actor and what it is doing."""

    handle: Any
    checkpoint: str | None = None  # hash of the checkpoint it last attacked (it still holds that model)
    shard: Shard | None = None


def worker_resources(config: PoolConfig) -> tuple[int, float, float]:
    """(number of workers, GPUs per worker, CPUs per worker) for the connected Ray cluster."""
    resources = ray.cluster_resources()
    gpus, cpus = resources.get("GPU", 0.0), resources.get("CPU", 0.0)
    gpus_per_worker = config.gpus_per_worker if config.gpus_per_worker is not None else (1.0 if gpus else 0.0)
    if config.num_workers is not None:
        count = config.num_workers
    elif gpus_per_worker > 0:
        count = int(math.floor(gpus / gpus_per_worker + 1e-9))
    else:
        count = int(math.floor(cpus / config.cpus_per_worker + 1e-9))
    if count < 1:
        raise WorkerStartError(f"the Ray cluster ({cpus:g} CPU, {gpus:g} GPU) fits no worker needing "
                               f"{config.cpus_per_worker:g} CPU and {gpus_per_worker:g} GPU; lower "
                               "--gpus-per-worker / --cpus-per-worker or add nodes")
    return count, gpus_per_worker, config.cpus_per_worker


class AttackPool:
    """Start with ``AttackPool(worker_config, pool_config)``, feed with ``run``, end with ``shutdown``."""

    def __init__(self, worker_config: WorkerConfig, config: PoolConfig = PoolConfig(),
                 max_workers: int | None = None) -> None:
        count, gpus, cpus = worker_resources(config)
        if max_workers is not None:
            count = max(1, min(count, max_workers))
        self.config = config
        self._actor_class = ray.remote(AttackWorker).options(
            num_cpus=cpus, num_gpus=gpus, max_restarts=0, max_task_retries=0)
        self.worker_config = dataclasses.replace(worker_config, num_threads=max(1, int(cpus)))
        self._slots = [_Slot(self._actor_class.remote(self.worker_config)) for _ in range(count)]
        self._check_started()

    def _check_started(self) -> None:
        try:
            ray.get([slot.handle.describe.remote() for slot in self._slots])
        except RayActorError as exc:
            self.shutdown()
            raise WorkerStartError(f"attack workers failed to start: {exc}") from None

    @property
    def num_workers(self) -> int:
        return len(self._slots)

    def in_flight(self) -> list[tuple[Any, Shard]]:
        """(actor handle, shard) for every shard being attacked right now."""
        return [(slot.handle, slot.shard) for slot in self._slots if slot.shard is not None]

    def run(self, shards: Sequence[Shard], on_result: Callable[[Shard, ShardResult], None],
            on_failure: Callable[[Shard, str, int], None], progress: bool = True) -> PoolStats:
        """Attack every shard; ``on_result``/``on_failure(shard, error, attempts)`` fire as each one ends."""
        stats = PoolStats(workers=len(self._slots))
        queues: dict[str, deque[Shard]] = defaultdict(deque)
        for shard in shards:
            queues[shard.target.checkpoint_hash].append(shard)
        attempts: dict[str, int] = defaultdict(int)
        running: dict[Any, _Slot] = {}
        bar = tqdm(total=sum(len(s.examples) for s in shards), unit="ex", desc="attack", disable=not progress,
                   dynamic_ncols=True)
        try:
            while running or any(queues.values()):
                for slot in self._slots:
                    if slot.shard is None and any(queues.values()):
                        slot.shard = self._next_shard(slot, queues)
                        running[slot.handle.attack_shard.remote(slot.shard)] = slot
                ready, _ = ray.wait(list(running), num_returns=1)
                slot = running.pop(ready[0])
                shard, slot.shard = slot.shard, None
                attempts[shard.shard_id] += 1
                try:
                    result = ray.get(ready[0])
                except RayTaskError as exc:  # the attack raised: deterministic, do not retry
                    self._fail(shard, _cause(exc), attempts[shard.shard_id], on_failure, stats, bar)
                except RayError as exc:  # the actor is gone (killed, OOM, node lost): replace it, retry the shard
                    stats.actor_deaths += 1
                    self._replace(slot)
                    if attempts[shard.shard_id] > self.config.max_retries:
                        self._fail(shard, f"worker died {attempts[shard.shard_id]} times; last: {exc}",
                                   attempts[shard.shard_id], on_failure, stats, bar)
                    else:
                        stats.retries += 1
                        queues[shard.target.checkpoint_hash].appendleft(shard)
                else:
                    slot.checkpoint = shard.target.checkpoint_hash
                    on_result(shard, result)
                    stats.shards_done += 1
                    stats.examples_done += len(shard.examples)
                    bar.update(len(shard.examples))
                bar.set_postfix(workers=len(self._slots), failed=stats.shards_failed, retried=stats.retries)
        finally:
            bar.close()
            for slot in self._slots:
                slot.shard = None
        return stats

    def _next_shard(self, slot: _Slot, queues: dict[str, deque[Shard]]) -> Shard:
        if slot.checkpoint and queues.get(slot.checkpoint):
            return queues[slot.checkpoint].popleft()
        busy = defaultdict(int)
        for other in self._slots:
            if other.shard is not None:
                busy[other.shard.target.checkpoint_hash] += 1
        best = max((c for c, q in queues.items() if q), key=lambda c: len(queues[c]) / (1 + busy[c]))
        return queues[best].popleft()

    def _replace(self, slot: _Slot) -> None:
        ray.kill(slot.handle, no_restart=True)  # already dead in most cases; makes sure it is
        slot.handle = self._actor_class.remote(self.worker_config)
        slot.checkpoint = None

    @staticmethod
    def _fail(shard: Shard, error: str, attempts: int, on_failure: Callable[[Shard, str, int], None],
              stats: PoolStats, bar: Any) -> None:
        on_failure(shard, error, attempts)
        stats.shards_failed += 1
        bar.update(len(shard.examples))

    def shutdown(self) -> None:
        """Stop every actor of the pool."""
        for slot in self._slots:
            ray.kill(slot.handle, no_restart=True)
        self._slots = []

    def __enter__(self) -> AttackPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


def _cause(exc: RayTaskError) -> str:
    """The original exception of a failed actor task, as 'Type: message'."""
    cause = exc.cause if getattr(exc, "cause", None) is not None else exc
    return f"{type(cause).__name__}: {cause}"
