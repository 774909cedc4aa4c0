"""Fixtures for the results tests: checkpoints of two methods (plain and VDA) of one seed."""

from __future__ import annotations

from typing import Any

import pytest

from attack_workers.results.store import ResultStore


def write_plain_and_vda(store: ResultStore) -> None:
    """Record c1 (plain, lambda 0) and c2 (VDA sharp, lambda 1), seed 1 both: one method pair for Δ."""
    for i, (checkpoint, lam) in enumerate((("c1", 0.0), ("c2", 1.0))):
        store.write_checkpoint({"checkpoint_hash": checkpoint, "path": f"/runs/{checkpoint}",
                                "run_id": f"run-{checkpoint}", "epoch": 1, "created": float(i), "recorded_at": 0.0,
                                "config.seed": 1, "config.vda.lam": lam, "config.vda.mode": "sharp",
                                "metrics.dev_acc": 0.8})


@pytest.fixture()
def plain_and_vda() -> Any:
    return write_plain_and_vda
