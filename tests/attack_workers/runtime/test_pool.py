"""The Ray pool end to end: evaluation into the store, a killed actor, resume, a failing shard.

Runs a private 2-CPU Ray (``local_ray``) and one 2-actor pool shared by the module's tests.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from attack_workers.runtime.evaluation import EvalConfig, evaluate, plan_evaluation
from attack_workers.attack.protocols import AttackParams
from attack_workers.results.store import ResultStore
from attack_workers.runtime.worker import WorkerConfig

KEY = ["checkpoint_hash", "attack_key", "example_id"]


@pytest.fixture(scope="module")
def pool(local_ray):
    from attack_workers.runtime.pool import AttackPool, PoolConfig

    with AttackPool(WorkerConfig(), PoolConfig(num_workers=2, max_retries=2)) as started:
        yield started


# These tests exercise the pool, not the word filter: a loose filter lets the tiny fixture models'
# predictions flip (at the default 0.7 they survive every swap).
LOOSE_WORD_THRESHOLD = 0.1


def config(store: Path, protocol: str = "vda-paper", max_candidates: int = 8, shard_size: int = 2) -> EvalConfig:
    params = AttackParams(max_candidates=max_candidates, word_similarity_threshold=LOOSE_WORD_THRESHOLD)
    return EvalConfig(store=str(store), protocol=protocol, params=params, shard_size=shard_size)


def test_evaluate_many_checkpoints(pool, review_checkpoint, pair_checkpoint, tmp_path):
    corrupt = Path(shutil.copytree(review_checkpoint, tmp_path / "corrupt"))
    next((corrupt / "model").glob("*.safetensors")).write_bytes(b"")
    report = evaluate([str(review_checkpoint), str(pair_checkpoint), str(corrupt)], config(tmp_path / "store"),
                      attack_pool=pool, progress=False)
    assert not report.ok and [Path(p.path).name for p in report.plan.problems] == ["corrupt"]
    assert report.examples_attacked == 12 and not report.failed_shards
    summary = report.summary.set_index("dataset")
    assert summary.loc["reviews", "num_examples"] == 8 and summary.loc["pairs", "num_examples"] == 4
    assert summary.loc["reviews", "clean_acc"] == 1.0 and summary.loc["reviews", "attack_acc"] < 1.0
    assert summary.loc["reviews", "config.data.max_length"] == 64  # joined with the manifest
    store = ResultStore(tmp_path / "store")
    rows = store.load_examples()
    assert len(rows) == 12 and not rows.duplicated(KEY).any()
    assert set(rows["worker"]).__len__() == 2  # both actors worked
    failures = store.load_failures()
    assert list(failures["kind"]) == ["checkpoint"] and "corrupt" in failures["error"].iloc[0]


def test_a_killed_actor_loses_and_duplicates_nothing(pool, review_checkpoint, tmp_path):
    import ray

    store = ResultStore(tmp_path / "store")
    cfg = config(tmp_path / "store", protocol="textattack")
    plan = plan_evaluation([str(review_checkpoint)], cfg, WorkerConfig(), store)
    killed: list[str] = []
    results: list[str] = []

    def on_result(shard, result):
        store.write_examples(result.rows)
        results.append(shard.shard_id)
        if not killed and pool.in_flight():
            handle, victim = pool.in_flight()[0]
            killed.append(victim.shard_id)
            ray.kill(handle)

    stats = pool.run(plan.shards, on_result, lambda *failure: pytest.fail(f"unexpected failure {failure}"),
                     progress=False)
    assert killed and stats.actor_deaths == 1 and stats.retries == 1 and stats.shards_failed == 0
    assert sorted(results) == sorted(s.shard_id for s in plan.shards)  # the killed shard finished once, elsewhere
    rows = store.load_examples()
    assert len(rows) == 8 and not rows.duplicated(KEY).any()
    assert pool.num_workers == 2  # the dead actor was replaced


def test_resume_attacks_only_what_is_missing(pool, review_checkpoint, tmp_path):
    store = ResultStore(tmp_path / "store")
    cfg = config(tmp_path / "store", max_candidates=6, shard_size=3)
    plan = plan_evaluation([str(review_checkpoint)], cfg, WorkerConfig(), store)
    written: list[Path] = []

    def interrupted(shard, result):
        written.append(store.write_examples(result.rows))
        raise KeyboardInterrupt  # Ctrl-C after the first finished shard

    with pytest.raises(KeyboardInterrupt):
        pool.run(plan.shards, interrupted, lambda *failure: None, progress=False)
    first_rows = store.load_examples()
    assert len(written) == 1 and len(first_rows) == 3
    stamp = written[0].stat().st_mtime_ns

    report = evaluate([str(review_checkpoint)], cfg, attack_pool=pool, progress=False)
    assert report.plan.examples_already_done == 3 and report.examples_attacked == 5
    assert written[0].stat().st_mtime_ns == stamp  # the finished shard was not attacked again
    rows = store.load_examples()
    assert len(rows) == 8 and not rows.duplicated(KEY).any()
    again = evaluate([str(review_checkpoint)], cfg, attack_pool=pool, progress=False)
    assert again.examples_attacked == 0 and again.plan.shards == []


def test_a_failing_shard_is_reported_once_and_the_others_finish(pool, review_checkpoint, tmp_path):
    import dataclasses

    from attack_workers.runtime.shards import Shard

    cfg = config(tmp_path / "store", protocol="textattack", shard_size=4)
    good = plan_evaluation([str(review_checkpoint)], cfg, WorkerConfig(), ResultStore(cfg.store)).shards[0]
    bad = Shard(good.target, (dataclasses.replace(good.examples[0], id="bad", text_b="a second sentence"),))
    done, failed = [], []
    store = ResultStore(cfg.store)

    def on_failure(shard, error, attempts):
        failed.append((shard.shard_id, error, attempts))
        store.record_failed_shard(shard, error, attempts)

    stats = pool.run([bad, good], lambda shard, result: done.append(shard.shard_id), on_failure, progress=False)
    assert done == [good.shard_id]
    assert len(failed) == 1 and failed[0][0] == bad.shard_id and failed[0][2] == 1
    assert "ValueError" in failed[0][1] and "text columns" in failed[0][1]
    assert stats.retries == 0 and stats.actor_deaths == 0
    recorded = store.load_failures()
    assert list(recorded["example_ids"].iloc[0]) == ["bad"] and "text columns" in recorded["error"].iloc[0]


def test_ada_set_is_generated_labelled_reused_and_trainable(pool, review_checkpoint, tmp_path):
    import json

    from attack_workers.ada import INFO_FILE, generate_adversarial_set
    from attack_workers.lexicon.audit import LABEL_RISK_COLUMNS
    from vda.checkpoint import load_manifest
    from vda.config import config_from_dict
    from vda.data import load_task

    # The lenient protocol: the tiny fixture model fits its training sentences, and only swaps that
    # no word filter vets (and the audit may flag) flip them.
    cfg = EvalConfig(store="", split="train", num_examples=12, protocol="textattack",
                     params=AttackParams(max_candidates=8), shard_size=6)
    path = generate_adversarial_set(review_checkpoint, tmp_path / "ada", cfg, attack_pool=pool, progress=False)
    rows = ResultStore(tmp_path / "ada" / "store").load_examples()
    assert len(rows) == 12 and set(rows["split"]) == {"train"}
    records = [json.loads(line) for line in path.read_text().splitlines()]
    label_risk = rows[list(LABEL_RISK_COLUMNS)].any(axis=1)
    succeeded = rows[(rows["status"] == "succeeded") & ~label_risk].set_index("example_id")
    assert 0 < len(records) == len(succeeded)  # successes that may have changed the label are not training examples
    labels = load_manifest(review_checkpoint).label_names
    for record in records:
        source = succeeded.loc[record["source_example_id"]]
        assert record["text_a"] == source["perturbed_text"] != source["original_text"]
        assert record["label"] == labels[int(source["label"])]
    assert json.loads((path.parent / INFO_FILE).read_text())["succeeded"] == len(records)
    assert path.parent.stat().st_mode & 0o777 == 0o755  # readable like every other result

    parts = sorted((tmp_path / "ada" / "store").rglob("*.parquet"))
    assert generate_adversarial_set(review_checkpoint, tmp_path / "ada", cfg, attack_pool=pool) == path
    assert sorted((tmp_path / "ada" / "store").rglob("*.parquet")) == parts  # reused: nothing attacked again
    assert (tmp_path / "ada" / "adversarial.jsonl").resolve() == path.resolve()  # the stable name of the latest set

    data = config_from_dict({"data": {**load_manifest(review_checkpoint).config["data"],
                                      "extra_train_file": str(path)}}).data
    base = config_from_dict({"data": load_manifest(review_checkpoint).config["data"]}).data
    assert len(load_task(data).splits["train"]) == len(load_task(base).splits["train"]) + len(records)


def _drain(pool, seconds: float = 300) -> None:
    """Poll ``pool`` until it has nothing left (a hung pool fails the test instead of hanging it)."""
    import time

    deadline = time.time() + seconds
    while pool.pending():
        assert time.time() < deadline, f"{pool.pending()} shard(s) still pending"
        pool.poll(1.0)


def _textattack_shards(checkpoint, tmp_path) -> tuple[ResultStore, list]:
    """A fresh store and the shards of one checkpoint under the textattack protocol."""
    store = ResultStore(tmp_path / "store")
    return store, plan_evaluation([str(checkpoint)], config(tmp_path / "store", protocol="textattack"),
                                  WorkerConfig(), store).shards


def _no_failure(*failure) -> None:
    pytest.fail(f"unexpected failure {failure}")


def _recorder(store: ResultStore) -> tuple[Any, list[tuple[str, str]]]:
    """An on_result callback that writes the rows and notes (shard id, worker) of each result."""
    reported: list[tuple[str, str]] = []

    def on_result(shard, result):
        store.write_examples(result.rows)
        reported.append((shard.shard_id, result.worker))

    return on_result, reported


def test_shards_submitted_while_others_run_are_attacked_once(pool, review_checkpoint, tmp_path):
    from collections import Counter

    store, shards = _textattack_shards(review_checkpoint, tmp_path)
    on_result, reported = _recorder(store)
    on_failure = _no_failure

    pool.submit(shards[:2], on_result, on_failure)
    while not pool.in_flight():  # an actor replaced by an earlier test may still be loading its models
        pool.poll(0.1)
    assert not reported
    pool.submit(shards[2:], on_result, on_failure)  # while the first ones run
    assert pool.pending() == 4
    _drain(pool)
    assert Counter(shard for shard, _ in reported) == Counter(s.shard_id for s in shards)  # each once
    rows = store.load_examples()
    assert len(rows) == 8 and not rows.duplicated(KEY).any()


def test_resize_retires_idle_actors_at_once_and_busy_ones_after_their_shard(pool, review_checkpoint, tmp_path):
    import ray
    from ray.exceptions import RayActorError

    store, shards = _textattack_shards(review_checkpoint, tmp_path)
    on_result, reported = _recorder(store)
    on_failure = _no_failure

    def is_dead(handle) -> bool:
        try:
            ray.get(handle.describe.remote(), timeout=60)
        except RayActorError:
            return True
        return False

    handles = [slot.handle for slot in pool._slots]
    pool.resize(1)  # both idle: one leaves at once
    assert pool.num_workers == 1 and sorted(map(is_dead, handles)) == [False, True]

    pool.resize(2, wait=True)  # a new actor, started and ready for shards
    pool.submit(shards, on_result, on_failure)
    _drain(pool)
    assert len({worker for _, worker in reported}) == 2  # the new actor attacked too

    pool.submit(shards[:2], on_result, on_failure)  # attacked again (the store is not consulted here)
    pool.poll(0)
    busy = [handle for handle, _ in pool.in_flight()]
    assert len(busy) == 2
    pool.resize(1)  # both busy: one leaves after its shard, which is still reported
    assert pool.num_workers == 1 and len(pool.in_flight()) == 2
    _drain(pool)
    assert len(reported) == 6 and sorted(map(is_dead, busy)) == [False, True]


def test_shrinking_a_mixed_pool_retires_idle_actors_first_and_busy_ones_only_when_needed(monkeypatch):
    """Fake slots, no Ray: which actors a shrinking pool retires (the Ray test above covers all-idle and all-busy)."""
    from attack_workers.runtime import pool as pool_module
    from attack_workers.runtime.pool import AttackPool, PoolStats, _Slot, _Task

    killed: list[str] = []
    monkeypatch.setattr(pool_module.ray, "kill", lambda handle, no_restart: killed.append(handle))
    busy = [_Slot(f"busy{i}", task=_Task(shard=None, on_result=None, on_failure=None), ref=f"ref{i}") for i in (0, 1)]
    idle = [_Slot(f"idle{i}") for i in (0, 1)]
    starting = _Slot("starting", starting="describe-ref")  # no models loaded yet: the cheapest to lose
    pool = AttackPool.__new__(AttackPool)  # its state only: no actors started
    pool._slots, pool.stats = [idle[0], busy[0], starting, idle[1], busy[1]], PoolStats()

    pool.resize(3)  # two leave: the starting one and an idle one, at once; both busy ones keep running
    assert sorted(killed) == ["idle1", "starting"]
    assert pool._slots == [idle[0], busy[0], busy[1]] and not any(slot.retiring for slot in pool._slots)
    assert pool.num_workers == pool.stats.workers == 3

    pool.resize(1)  # two more: the last idle one at once, then one busy one after its current shard
    assert sorted(killed) == ["idle0", "idle1", "starting"]
    assert pool._slots == busy and [slot.retiring for slot in busy] == [False, True]
    assert pool.num_workers == 1
