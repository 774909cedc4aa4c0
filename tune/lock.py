"""One sweep at a time per experiment directory: a second one stops with an error instead of racing.

Two sweeps over one ``<output_dir>/<name>/`` (two terminals, a launcher script that fires after a
manual start) both train every cell the store lacks, in parallel, and both write checkpoint manifests
into the one store: the cells are trained twice, the cores split between the copies, and the store
holds the checkpoints of whichever copy is stopped (a study chunk lost 20 minutes of two cores this
way). An exclusive ``flock`` on ``.sweep.lock`` in the directory, held for the sweep's whole run,
makes the second one fail at once with the first one's pid and start time. The kernel drops the lock
when the holder exits, however it exits, so a killed sweep never leaves a stale lock. ``flock`` is
per machine: on a directory shared over NFS by several machines it does not exclude a sweep started
on another one (a Ray cluster's sweeps run from its head node, so one machine holds the lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Iterator

LOCK_FILE = ".sweep.lock"


class SweepLockedError(RuntimeError):
    """Another sweep holds this experiment directory."""


@contextlib.contextmanager
def exclusive_sweep(directory: Path) -> Iterator[None]:
    """Hold ``directory``'s sweep lock while the block runs; SweepLockedError if another process holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise SweepLockedError(
                f"another sweep is running on {directory} ({holder}): two sweeps over one store train the "
                "same cells twice and race on its files; wait for it to end (or stop it), or give this one "
                "another sweep.name or sweep.output_dir") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
