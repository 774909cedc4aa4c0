"""``export`` then ``import``: a store comes back row for row, and a study-sized export stays small."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from attack_workers.cli import main
from attack_workers.results.export import ExportError, export_store, import_store
from attack_workers.results.store import ResultStore

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def bench():
    """benchmarks/report_size.py's sweep-shaped synthetic store builder (every EXAMPLE_SCHEMA column filled)."""
    spec = importlib.util.spec_from_file_location("report_size", REPO / "benchmarks" / "report_size.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("report_size", module)
    spec.loader.exec_module(module)
    return module


def _plant(bench, root: Path, checkpoints: int, examples: int) -> ResultStore:
    """A store with every kind of file: rows, checkpoints, a plan, a failed shard, a training record."""
    from tune.study import write_training_record

    store = bench.build_store(root, checkpoints, examples, shard_size=10)
    first = store.load_checkpoints().iloc[0]
    store.record_plan(first["checkpoint_hash"], "5eed" * 4, [f"mr-dev-{e:05d}" for e in range(examples + 2)])
    store.write_failure({"kind": "shard", "path": first["path"], "checkpoint_hash": first["checkpoint_hash"],
                         "attack_key": "5eed" * 4, "example_ids": [f"mr-dev-{examples:05d}"], "error": "lost",
                         "attempts": 3})
    write_training_record(root, "k" * 16, 1, first["run_id"], first["checkpoint_hash"], first["path"],
                          {"epoch": 3, "dev_acc": 0.8}, 12.5, "tiny")
    return store


def _frame(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(list(df.columns[:3])).reset_index(drop=True)


def test_export_then_import_round_trips_every_row(bench, tmp_path, capsys):
    store = _plant(bench, tmp_path / "store", checkpoints=3, examples=25)
    (tmp_path / "sweep.yaml").write_text("sweep: {name: tiny}\n")
    reading = tmp_path / "verdicts.csv"
    reading.write_text("protocol,example_id,verdict,reason\nstrict,mr-dev-00001,reject,meaning changed\n")

    assert main(["export", "--store", str(store.root), "--out", str(tmp_path / "studies" / "tiny"),
                 "--reading", str(reading)]) == 0
    out = tmp_path / "studies" / "tiny"
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints.parquet", "examples.parquet", "export.json",
                                                     "failures.parquet", "plans.parquet", "reading.parquet",
                                                     "sweep.yaml", "trainings.parquet"]
    assert json.loads((out / "export.json").read_text())["files"]["examples.parquet"]["rows"] == 75
    assert "total" in capsys.readouterr().out

    assert main(["import", "--from", str(out), "--store", str(tmp_path / "copy")]) == 0
    copy = ResultStore(tmp_path / "copy")
    pd.testing.assert_frame_equal(copy.load_examples(), store.load_examples())
    pd.testing.assert_frame_equal(_frame(copy.load_checkpoints()), _frame(store.load_checkpoints()))
    pd.testing.assert_frame_equal(copy.load_failures(), store.load_failures())
    pd.testing.assert_frame_equal(copy.load_summary(), store.load_summary())  # plans and failures included
    assert copy.load_summary()["pending_examples"].max() == 2  # the plan's two ids never attacked
    from tune.study import load_trainings
    pd.testing.assert_frame_equal(load_trainings(copy.root), load_trainings(store.root))

    before = sorted(p.relative_to(copy.root) for p in copy.root.rglob("*") if p.is_file())
    assert import_store(out, copy.root) == {"written": 0, "present": len(before)}  # twice: nothing overwritten


def test_a_study_sized_export_is_under_2_mb(bench, tmp_path):
    """7,200 rows: 24 checkpoints x 300 attacked dev examples (the MR study's shape)."""
    store = _plant(bench, tmp_path / "store", checkpoints=24, examples=300)
    manifest = export_store(store.root, tmp_path / "out")
    assert manifest["files"]["examples.parquet"]["rows"] == 7200
    assert manifest["total_bytes"] <= 2_000_000, manifest


def test_export_refuses_a_directory_that_is_not_a_store(tmp_path):
    with pytest.raises(ExportError, match="not a results store"):
        export_store(tmp_path, tmp_path / "out")
    with pytest.raises(ExportError, match="no export.json"):
        import_store(tmp_path, tmp_path / "store")
