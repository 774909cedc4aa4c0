"""Losing the node a trial trains on: Tune retries it from its last checkpoint elsewhere, no epoch twice.

A private Ray cluster on this machine (``ray.cluster_utils.Cluster``): a head without CPUs, so the
trial runs on a 1-CPU worker node. When the trial's first checkpoint reaches the driver that node
is killed and another one added (what the autoscaler does). The attack pool's side of node loss
is tests/attack_workers/runtime/test_pool_node_loss.py. Run inside the private network namespace.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from attack_workers.results.store import ResultStore
from tune.config import sweep_from_dict
from tune.pipeline import AttackPipeline
from tune.sweep import run_sweep

REPO = Path(__file__).resolve().parents[2]
FAST_NODE_DEATH = {"health_check_period_ms": 500, "health_check_failure_threshold": 3}  # seconds, not 15


@pytest.fixture()
def trial_node(monkeypatch) -> Iterator[tuple[Any, Any]]:
    """(cluster, the only node with CPUs), the driver connected."""
    import ray
    from ray.cluster_utils import Cluster

    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    monkeypatch.setenv("RAY_TMPDIR", temp)  # the cluster's address file stays out of /tmp/ray, which `ray start` uses
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False,
                                                            "_system_config": FAST_NODE_DEATH})
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    try:
        node = cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
        yield cluster, node
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def test_a_trial_on_a_lost_node_resumes_from_its_checkpoint(trial_node, tmp_path, tiny_model_dir, make_sweep,
                                                            monkeypatch):
    cluster, doomed = trial_node
    raw = make_sweep(tmp_path / "results", tiny_model_dir, {"vda": {}}, objectives=["dev_acc"])
    raw["sweep"]["attack"]["enabled"] = False
    raw["fixed"]["epochs"] = 3  # the node dies after epoch 1; two more epochs of margin before the trial ends
    raw["fixed"]["data"]["max_train_examples"] = 256
    lost: list[str] = []
    on_checkpoint = AttackPipeline.on_checkpoint

    def lose_the_node_at_the_first_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        if not lost:
            lost.append(trial.trial_id)
            cluster.remove_node(doomed, allow_graceful=False)
            cluster.add_node(num_cpus=1)
        on_checkpoint(self, iteration, trials, trial, checkpoint, **info)

    monkeypatch.setattr(AttackPipeline, "on_checkpoint", lose_the_node_at_the_first_checkpoint)
    outcome = run_sweep(sweep_from_dict(raw, "test"), progress=False)

    assert lost and outcome.num_trials == 1 and not outcome.failed_trials
    error = (Path(outcome.experiment_path) / lost[0] / "error.txt").read_text()
    assert error.count("Failure #") == 1  # the lost node; the retry finished the trial
    checkpoints = ResultStore(outcome.output_dir / "store").load_checkpoints()
    assert sorted(checkpoints["epoch"]) == [1, 2, 3]  # resumed after epoch 1: no epoch trained twice
