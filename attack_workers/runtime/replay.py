"""Replay fixed texts on checkpoints: one forward pass per distinct text, batched; in this process or on Ray.

What ``transfer`` needs from a checkpoint is its predicted label on a list of texts, with no
search. The classifier is loaded and wrapped exactly as an attack worker does it
(``vda.checkpoint.load_checkpoint`` + ``DynamicPaddingModelWrapper``: the checkpoint's own
``max_length``, dynamic padding, duplicates run once), so a replayed text is classified as the
attack would have seen it. One job is one checkpoint: loading the weights costs more than the
forward passes, so a job carries every text that checkpoint must classify.

On Ray each job is a task with the CPUs/GPUs of an attack worker (``PoolConfig``); a task whose
worker dies is re-run up to ``max_retries`` times, and a job that raises is reported as failed
(with the error) while the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from attack_workers.runtime.pool import PoolConfig

log = logging.getLogger("attack_workers")
Query = str | tuple[str, str]


@dataclass(frozen=True)
class ReplayJob:
    """Classify ``queries`` (texts, or (text, text) pairs) with the checkpoint at ``path``."""

    path: str
    checkpoint_hash: str  # as planned: a checkpoint whose content changed since is refused
    max_length: int  # the checkpoint's training truncation (manifest config data.max_length)
    queries: tuple[Query, ...]
    batch_size: int = 64


def predict(job: ReplayJob, device: str = "auto", num_threads: int = 0) -> list[int]:
    """The checkpoint's predicted label for every query of ``job``, in order."""
    import torch

    from attack_workers.attack.model_wrapper import DynamicPaddingModelWrapper
    from vda.checkpoint import CheckpointError, checkpoint_hash, load_checkpoint

    if num_threads > 0:
        torch.set_num_threads(num_threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    found = checkpoint_hash(job.path)
    if found != job.checkpoint_hash:
        raise CheckpointError(f"{job.path}: content changed since the transfer was planned (hash {found} != "
                              f"{job.checkpoint_hash}); re-run the transfer")
    model, tokenizer, _ = load_checkpoint(job.path, device)
    wrapper = DynamicPaddingModelWrapper(model, tokenizer, job.max_length, batch_size=job.batch_size)
    return [int(p) for p in wrapper(list(job.queries)).argmax(dim=-1)] if job.queries else []


OnDone = Callable[[ReplayJob, list[int]], None]
OnFailure = Callable[[ReplayJob, str], None]


def replay_local(jobs: Sequence[ReplayJob], on_done: OnDone, on_failure: OnFailure) -> None:
    """Run ``jobs`` one after the other in this process (small transfers, tests, a machine without Ray)."""
    for job in jobs:
        try:
            predictions = predict(job)
        except (OSError, ValueError, RuntimeError) as exc:  # CheckpointError is a ValueError
            on_failure(job, f"{type(exc).__name__}: {exc}")
            continue
        on_done(job, predictions)


def replay_on_ray(jobs: Sequence[ReplayJob], on_done: OnDone, on_failure: OnFailure, pool: PoolConfig) -> None:
    """Run ``jobs`` as Ray tasks on the connected cluster, at most as many at once as ``pool`` fits workers;
    each result is handed to ``on_done`` as it arrives (the caller writes it), so an interruption loses only
    the jobs in flight."""
    import ray
    from ray.exceptions import RayError

    from attack_workers.runtime.pool import worker_resources

    workers, gpus, cpus = worker_resources(pool)
    task = ray.remote(predict).options(num_cpus=cpus, num_gpus=gpus, max_retries=pool.max_retries)
    queue, running = list(jobs), {}
    while queue or running:
        while queue and len(running) < workers:
            job = queue.pop(0)
            running[task.remote(job, "auto", max(1, int(cpus)))] = job
        (ref,), _ = ray.wait(list(running), num_returns=1)
        job = running.pop(ref)
        try:
            predictions = ray.get(ref)
        except RayError as exc:
            log.error("replay on %s failed: %s", job.path, exc)
            on_failure(job, str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__)
            continue
        on_done(job, predictions)
