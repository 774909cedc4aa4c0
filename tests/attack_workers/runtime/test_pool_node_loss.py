"""Losing a node mid-attack: its shard is re-queued, the pool replaces the actor, the store ends complete.

A private two-node Ray cluster on this machine (``ray.cluster_utils.Cluster``, 1 CPU per node),
one attack worker per node. Run inside the private network namespace like the other Ray tests.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from attack_workers.runtime.evaluation import EvalConfig, plan_evaluation
from attack_workers.attack.protocols import AttackParams
from attack_workers.results.store import ResultStore
from attack_workers.runtime.worker import WorkerConfig

KEY = ["checkpoint_hash", "attack_key", "example_id"]


@pytest.fixture()
def two_nodes(monkeypatch) -> Iterator[tuple[Any, Any]]:
    """(cluster, its second node): a head and one worker node of 1 CPU each, the driver connected."""
    import ray
    from ray.cluster_utils import Cluster

    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    monkeypatch.setenv("RAY_TMPDIR", temp)  # the cluster's address file stays out of /tmp/ray, which `ray start` uses
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        node = cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, log_to_driver=False)
        yield cluster, node
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def test_a_lost_node_requeues_its_shard_and_the_store_ends_complete(two_nodes, review_checkpoint, tmp_path):
    from attack_workers.runtime.pool import AttackPool, PoolConfig

    cluster, doomed = two_nodes
    store = ResultStore(tmp_path / "store")
    cfg = EvalConfig(store=str(store.root), protocol="textattack", params=AttackParams(max_candidates=8),
                     shard_size=2)
    plan = plan_evaluation([str(review_checkpoint)], cfg, WorkerConfig(), store)
    results: list[str] = []

    def on_result(shard, result):
        store.write_examples(result.rows)
        results.append(shard.shard_id)
        if len(results) == 1:  # both workers hold a shard (one per node): lose the second node now
            cluster.remove_node(doomed, allow_graceful=False)
            cluster.add_node(num_cpus=1)  # what the autoscaler does; the replacement worker needs a CPU

    with AttackPool(WorkerConfig(), PoolConfig(num_workers=2, max_retries=2)) as pool:
        stats = pool.run(plan.shards, on_result, lambda *failure: pytest.fail(f"unexpected failure {failure}"),
                         progress=False)
        assert pool.num_workers == 2  # the lost worker was replaced
    assert stats.actor_deaths == 1 and stats.retries == 1 and stats.shards_failed == 0
    assert sorted(results) == sorted(s.shard_id for s in plan.shards)  # the lost shard finished once, elsewhere
    rows = store.load_examples()
    assert len(rows) == 8 and not rows.duplicated(KEY).any()
