"""The Parquet results store: atomic shard files, concurrent writers, crashes, races, summaries."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from analysis.tables import format_paper_table
from attack_workers.results.store import EXAMPLE_COLUMNS, ResultStore, StoreError, load_examples


def test_round_trip_and_done_ids(tmp_path, make_shard):
    store = ResultStore(tmp_path)
    store.write_examples(make_shard(["e1", "e2"]))
    store.write_examples(make_shard(["e3"], status="succeeded"))
    store.write_examples(make_shard(["e1"], key="k2"))
    rows = store.load_examples()
    assert list(rows.columns) == list(EXAMPLE_COLUMNS)
    assert len(rows) == 4
    assert store.done_example_ids("c1", "k1") == {"e1", "e2", "e3"}
    assert store.done_example_ids("c1", "k2") == {"e1"}
    assert store.done_example_ids("c2", "k1") == set()
    assert rows["original_text_b"].isna().all()


def test_reading_only_some_attacks(tmp_path, make_shard):
    store = ResultStore(tmp_path)
    store.write_examples(make_shard(["e1", "e2"]))
    store.write_examples(make_shard(["e1"], key="k2"))
    store.write_examples(make_shard(["e1"], checkpoint="c2"))
    assert set(store.load_examples([("c1", "k2")])["attack_key"]) == {"k2"}
    summary = store.load_summary([("c1", "k1"), ("c2", "k1")])
    assert sorted(zip(summary["checkpoint_hash"], summary["attack_key"], summary["num_examples"])) == [
        ("c1", "k1", 2), ("c2", "k1", 1)]
    assert store.load_summary([]).empty


def test_empty_store_reads_as_empty_frames(tmp_path):
    store = ResultStore(tmp_path / "nothing-yet")
    assert store.load_examples().empty and list(store.load_examples().columns) == list(EXAMPLE_COLUMNS)
    assert store.load_summary().empty
    assert format_paper_table(store.load_summary()) == "(no results)"


def test_rows_must_match_the_schema_and_share_one_key(tmp_path, make_row):
    store = ResultStore(tmp_path)
    bad = make_row("e1")
    del bad["num_queries"]
    with pytest.raises(ValueError, match="num_queries"):
        store.write_examples([bad])
    with pytest.raises(ValueError, match="one checkpoint and attack key"):
        store.write_examples([make_row("e1"), make_row("e2", checkpoint="c2")])
    with pytest.raises(ValueError, match="no rows"):
        store.write_examples([])


def _write_many(root: str, shards: list[list[dict]]) -> None:
    store = ResultStore(root)
    for rows in shards:
        store.write_examples(rows)


def test_concurrent_writers_lose_nothing(tmp_path, make_shard):
    ctx = multiprocessing.get_context("fork")
    work = [[make_shard([f"w{w}-{i}-a", f"w{w}-{i}-b"], checkpoint=f"c{w % 2}") for i in range(10)] for w in range(4)]
    procs = [ctx.Process(target=_write_many, args=(str(tmp_path), shards)) for shards in work]
    for p in procs:
        p.start()
    seen = 0
    while any(p.is_alive() for p in procs):  # a reader during the writes sees whole shards only
        rows = load_examples(tmp_path)
        assert len(rows) % 2 == 0 and len(rows) >= seen
        seen = len(rows)
    for p in procs:
        p.join()
        assert p.exitcode == 0
    rows = load_examples(tmp_path)
    assert len(rows) == 4 * 10 * 2
    assert not rows.duplicated(["checkpoint_hash", "attack_key", "example_id"]).any()


def test_crash_mid_write_leaves_the_store_readable(tmp_path, monkeypatch, make_shard):
    store = ResultStore(tmp_path)
    store.write_examples(make_shard(["e1", "e2"]))

    def dies_half_way(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half a file")
        raise KeyboardInterrupt  # e.g. Ctrl-C while writing

    monkeypatch.setattr(pq, "write_table", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        store.write_examples(make_shard(["e3"]))
    monkeypatch.undo()
    # A writer killed with SIGKILL would not clean up its temp file: it must be ignored too.
    leftover = tmp_path / "examples" / "c1" / "k1" / ".tmp-killed.parquet"
    leftover.write_bytes(b"PAR1 truncated")
    assert set(store.load_examples()["example_id"]) == {"e1", "e2"}
    assert store.done_example_ids("c1", "k1") == {"e1", "e2"}


def test_a_corrupt_shard_file_is_named_in_the_error(tmp_path, make_shard):
    store = ResultStore(tmp_path)
    path = store.write_examples(make_shard(["e1"]))
    path.write_bytes(b"not parquet")
    with pytest.raises(StoreError, match=path.name):
        store.load_examples()


def test_racing_writers_keep_one_row_per_example(tmp_path, make_shard):
    store = ResultStore(tmp_path)
    store.write_examples(make_shard(["e1", "e2"], finished_at=1.0))
    # an overlapping shard written by a second evaluation of the same key
    store.write_examples(make_shard(["e2", "e3"], finished_at=2.0, status="succeeded"))
    rows = store.load_examples().set_index("example_id")
    assert sorted(rows.index) == ["e1", "e2", "e3"]
    assert rows.loc["e2", "status"] == "succeeded"  # the latest row wins


def test_summary_joins_manifest_and_counts_pending_failures(tmp_path, make_shard):
    store = ResultStore(tmp_path)
    store.write_examples(make_shard(["e1", "e2"], status="succeeded"))
    store.write_examples(make_shard(["e3", "e4"], status="failed"))
    store.write_checkpoint({"checkpoint_hash": "c1", "path": "/ckpt/a", "run_id": "run-c1", "recorded_at": time.time(),
                            "config.vda.sigma": 0.01, "config.vda.lam": 1.0})
    store.write_failure({"kind": "shard", "path": "/ckpt/a", "checkpoint_hash": "c1", "attack_key": "k1",
                         "example_ids": ["e5", "e6"], "error": "ValueError: boom", "attempts": 1})
    store.write_failure({"kind": "shard", "path": "/ckpt/a", "checkpoint_hash": "c1", "attack_key": "k1",
                         "example_ids": ["e1"], "error": "old failure, since fixed", "attempts": 1})
    summary = store.load_summary()
    assert len(summary) == 1
    row = summary.iloc[0]
    assert row["config.vda.sigma"] == 0.01 and row["path"] == "/ckpt/a"
    assert row["attack.max_candidates"] == 48
    assert row["num_examples"] == 4 and row["attack_acc"] == pytest.approx(0.5)
    assert row["pending_examples"] == 2
    failures = store.load_failures()
    assert list(failures["error"]) == ["ValueError: boom"]
    assert len(store.load_failures(active_only=False)) == 2
    table = format_paper_table(summary, ("config.vda.sigma",))
    assert "Ori Acc" in table and "0.500" in table and "0.01" in table
    with pytest.raises(ValueError, match="unknown summary column"):
        format_paper_table(summary, ("config.nope",))


def test_paper_table_shows_the_attack_accuracy_interval_and_the_flagged_share(tmp_path, make_shard):
    store = ResultStore(tmp_path)
    store.write_examples(make_shard(["e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9", "e10"], status="failed"))
    store.write_examples(make_shard(["e11", "e12", "e13"], status="succeeded", checkpoint="c2"))
    summary = store.load_summary()
    table = format_paper_table(summary).splitlines()
    # Wilson at the edges: c1, 10 robust of 10: [n / (n + z^2), 1] = [10 / 13.841, 1] = [0.722, 1];
    # c2, 0 of 3: [0, z^2 / (n + z^2)] = [0, 3.841 / 6.841] = [0, 0.561]
    assert "1.000 [0.722, 1.000]" in table[2] and "0.000 [0.000, 0.561]" in table[3]
    summary["flagged_share"] = [0.25, float("nan")]  # the validity audit's share, NaN where not audited
    table = format_paper_table(summary).splitlines()
    assert table[0].split()[-1] == "Flagged"
    assert table[2].split()[-1] == "0.250" and table[3].split()[-1] == "nan"


def test_a_skipped_checkpoint_stays_recorded_until_it_is_evaluated(tmp_path):
    store = ResultStore(tmp_path)
    store.record_skipped_checkpoint("/ckpt/b", "corrupt weights")
    assert list(store.load_failures()["path"]) == ["/ckpt/b"]
    store.write_checkpoint({"checkpoint_hash": "c9", "path": "/ckpt/b", "run_id": "r", "recorded_at": time.time() + 1})
    assert store.load_failures().empty


def test_summary_uses_each_protocols_definitions(tmp_path, make_shard):
    store = ResultStore(tmp_path)
    for protocol, key in (("textattack", "kt"), ("vda-paper", "kv")):
        store.write_examples(make_shard(["e1"], key=key, protocol=protocol, status="succeeded", num_queries=11))
        store.write_examples(make_shard(["e2"], key=key, protocol=protocol, status="failed", num_queries=21))
    summary = store.load_summary().set_index("protocol")
    assert summary.loc["textattack", "avg_queries"] == pytest.approx(16.0)
    assert summary.loc["vda-paper", "avg_queries"] == pytest.approx(15.0)


def test_an_interrupted_evaluation_shows_its_pending_examples(tmp_path, make_shard):
    store = ResultStore(tmp_path)
    store.record_plan("c1", "k1", ["e1", "e2", "e3", "e4"])
    store.write_examples(make_shard(["e1", "e2"]))  # the run stopped after one shard
    assert store.load_summary().iloc[0]["pending_examples"] == 2
    store.record_plan("c1", "k1", ["e3"])  # a resumed run plans a subset: the plan only grows
    store.write_examples(make_shard(["e3", "e4"]))
    assert store.load_summary().iloc[0]["pending_examples"] == 0


def test_summary_reports_the_share_of_flagged_successes(tmp_path, make_shard):
    store = ResultStore(tmp_path)
    flagged = {"audit_flagged": True, "audit_antonym": True, "audit_unknown_pairs": 1,
               "substitutions": '[["good", "bad"]]'}
    store.write_examples(make_shard(["e1"], status="succeeded", **flagged)
                         + make_shard(["e2", "e3", "e4"], status="succeeded")
                         + make_shard(["e5"], status="failed", audit_flagged=True))  # only successes count
    row = store.load_summary().iloc[0]
    assert row["num_flagged"] == 1 and row["flagged_share"] == pytest.approx(0.25)
    assert row["flagged_antonym_share"] == pytest.approx(0.25) and row["flagged_nonword_share"] == 0
    assert row["hole_share"] == pytest.approx(1 / 4)  # one unchecked substitution out of four changed words
    assert "Flagged" in format_paper_table(store.load_summary())


def _plan_many(root: str, planner: int, rounds: int, start) -> None:
    """One planner of a checkpoint and key: each round plans everything it planned before plus one more example."""
    store = ResultStore(root)
    start.wait()
    for i in range(rounds):
        store.record_plan("c1", "k1", [f"p{planner}-{j}" for j in range(i + 1)])


def test_concurrent_planners_of_one_checkpoint_and_key_lose_no_planned_example(tmp_path, make_shard):
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(4)
    procs = [ctx.Process(target=_plan_many, args=(str(tmp_path), planner, 30, start)) for planner in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    store = ResultStore(tmp_path)
    planned = {f"p{planner}-{j}" for planner in range(4) for j in range(30)}
    assert store.planned_example_ids("c1", "k1") == planned
    store.write_examples(make_shard(["p0-0", "p1-0"]))
    assert store.load_summary().iloc[0]["pending_examples"] == len(planned) - 2
    assert not [p for p in (tmp_path / "plans").rglob(".*")]  # no temp file left


def test_a_summary_of_some_attacks_reads_only_their_files_once(tmp_path, make_shard, monkeypatch):
    store = ResultStore(tmp_path)
    for checkpoint, key in (("c1", "k1"), ("c2", "k2")):
        store.write_examples(make_shard(["e1", "e2"], checkpoint=checkpoint, key=key))
        store.write_checkpoint({"checkpoint_hash": checkpoint, "path": f"/ckpt/{checkpoint}", "run_id": "r",
                                "recorded_at": 1.0})
        store.write_failure({"kind": "shard", "path": f"/ckpt/{checkpoint}", "checkpoint_hash": checkpoint,
                             "attack_key": key, "example_ids": ["e3"], "error": "boom", "attempts": 1})
        store.record_plan(checkpoint, key, ["e1", "e2", "e3", "e4"])
    store.record_skipped_checkpoint("/ckpt/other", "corrupt weights")
    read: list[str] = []
    real = pq.read_table
    monkeypatch.setattr(pq, "read_table", lambda path, **kw: read.append(str(Path(path).relative_to(tmp_path)))
                        or real(path, **kw))
    summary = store.load_summary([("c1", "k1")])
    assert list(summary["pending_examples"]) == [2] and list(summary["path"]) == ["/ckpt/c1"]
    assert sorted(read) == sorted(["checkpoints/c1.parquet", *(str(p.relative_to(tmp_path)) for p in
                                   [*(tmp_path / "examples" / "c1" / "k1").glob("*.parquet"),
                                    *(tmp_path / "failures").glob("shard-c1-k1-*.parquet")])])


def test_summary_reports_the_hole_share_per_dataset(tmp_path, make_shard):
    """Each dataset's share of substitutions no word vector could check: a corpus the lexicon covers
    badly shows here (its words have no vectors, so the word filter passes their swaps unchecked)."""
    store = ResultStore(tmp_path)
    store.write_examples(make_shard(["e1", "e2"], status="succeeded", audit_unknown_pairs=1, audit_hole=True)
                         + make_shard(["e3", "e4"], status="succeeded"))
    store.write_examples(make_shard(["f1", "f2"], status="succeeded", checkpoint="c2", dataset="imdb",
                                    words_changed=2, audit_unknown_pairs=2, audit_hole=True))
    summary = store.load_summary().set_index("checkpoint_hash")
    assert summary.loc["c1", "hole_share"] == pytest.approx(2 / 4)
    assert (summary.loc["c2", "hole_substitutions"], summary.loc["c2", "substituted_words"]) == (4, 4)
    table = format_paper_table(store.load_summary()).splitlines()
    assert table[0].split()[-2:] == ["Holes", "Flagged"]
    assert table[-1] == ("hole share per dataset (substituted words of successes with no word vector): "
                         "imdb/dev textattack 1.000 of 4; reviews/dev textattack 0.500 of 4")
