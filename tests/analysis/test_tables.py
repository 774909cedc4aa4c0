"""The one per-checkpoint table: every surface (CLI, HTML report, sweep summary) prints the same cells."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

from attack_workers.cli import main
from analysis.report import summary_table
from attack_workers.results.store import ResultStore
from analysis.tables import checkpoint_table, count_cell, format_cells, format_paper_table

ROOT = Path(__file__).resolve().parents[2]


def _partial_store(tmp_path, make_row) -> ResultStore:
    """c1: bert-attack finished e1, pwws e2 (a union with no finished example); c2: both finished both."""
    store = ResultStore(tmp_path / "sweep" / "store")
    for checkpoint, done in (("c1", {"bert-attack": ["e1"], "pwws": ["e2"]}),
                             ("c2", {"bert-attack": ["e1", "e2"], "pwws": ["e1", "e2"]})):
        for attack, ids in done.items():
            store.record_plan(checkpoint, f"k-{attack}", ["e1", "e2"])
            store.write_results([make_row(i, "failed", checkpoint=checkpoint, key=f"k-{attack}", attack=attack,
                                          union="U", protocol="strict") for i in ids])
    return store


def test_every_surface_prints_the_same_cells(tmp_path, make_row, capsys):
    """Issue 29.7 and 29.4: the CLI, the report and the sweep's table render one table; a partial union
    prints its n and pending count (before: "2.0" in the CLI, IntCastingNaNError in the report)."""
    from analysis.plots import paper_table, rank

    store = _partial_store(tmp_path, make_row)
    summary = store.load_summary()
    cli = format_paper_table(summary)
    report = summary_table(summary)
    sweep = format_cells(paper_table(rank(summary.assign(**{"metrics.dev_acc": 0.8}), ["attack_acc", "dev_acc"])))
    for cells in (report, sweep):
        assert sorted(cells["n"]) == sorted(["0 (2 pending)", "1 (1 pending)", "1 (1 pending)", "2", "2", "2"])
        assert sorted(cells["Att Acc [95 % CI]"]) == sorted(report["Att Acc [95 % CI]"])
        assert all(cell in cli for cell in cells["n"]) and all(cell in cli for cell in cells["Att Acc [95 % CI]"])
    assert "nan" in set(report["Att Acc [95 % CI]"])  # the partial union: undefined, printed as every table does
    assert "2.0" not in cli
    assert main(["report", "--store", str(store.root), "--out", str(tmp_path / "page")]) == 0
    assert (tmp_path / "page" / "report.html").stat().st_size > 1000
    capsys.readouterr()


def test_values_stay_numbers_and_counts_stay_counts(tmp_path, make_row):
    table = checkpoint_table(_partial_store(tmp_path, make_row).load_summary())
    assert table["n"].dtype.kind == "i" and table["Att Acc"].dtype.kind == "f"
    assert count_cell(270, spared=30) == "270 (30 spared: not attacked, left out of n)"
    assert checkpoint_table(pd.DataFrame()).empty and format_paper_table(pd.DataFrame()) == "(no results)"


def test_the_union_attack_name_is_written_once():
    """Issue 29.7: "union" appears as a string only as ``keys.UNION`` (docstrings and messages aside)."""
    offenders = []
    for path in [*(ROOT / "attack_workers").rglob("*.py"), *(ROOT / "tune").rglob("*.py"),
                 *(ROOT / "analysis").rglob("*.py")]:
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value == "union" and id(node) not in docstrings:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == ["attack_workers/results/keys.py:" + str(_union_line())], offenders


def _union_line() -> int:
    source = (ROOT / "attack_workers" / "results" / "keys.py").read_text().splitlines()
    return next(i for i, line in enumerate(source, start=1) if line.startswith("UNION = "))
