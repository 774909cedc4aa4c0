"""A results page's tables regenerate from its committed study export alone (issue 28 items 3-4).

The mechanism study's page (docs/results/mechanism-mr.md) quotes ``analysis.reproduce``,
``attack_workers summary``, ``attack_workers transfer-summary`` and ``analysis.figures`` run on a store imported from
``results/studies/mechanism-mr``; the default sweep's page (default-sweep.md) quotes
``analysis.reproduce`` on ``results/studies/default-sweep``; the MR study's (study-mr.md) the plain
and sharp-VDA rows of the mechanism study's. Every Att Acc, Δ and transfer rate those
commands print must stand in the page, so a page cannot drift from its data (re-export and re-paste
together).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from attack_workers.cli import main as attack_workers_main
from attack_workers.results.export import import_store
from analysis.figures import main as figures_main
from analysis.reproduce import main as reproduce_main

ROOT = Path(__file__).resolve().parents[2]
INTERVAL = re.compile(r"[+-]?\d\.\d{3} \[[+-]?\d\.\d{3}, [+-]?\d\.\d{3}\]")
# page -> (its export, the rows of `analysis.reproduce` it quotes: None for every row). study-mr.md is
# rebuilt from the mechanism study's plain and sharp-VDA arms (issue 28 item 4), the 1-epoch cells.
PAGES = {"mechanism-mr": ("mechanism-mr", None), "default-sweep": ("default-sweep", None),
         "study-mr": ("mechanism-mr", re.compile(r"^\| [^|]+ \| (BERT \| -|BERT\+VDA \| sharp) \| (?!.*epochs=4)"))}


def _page(name: str) -> str:
    return " ".join((ROOT / "docs" / "results" / f"{name}.md").read_text().split())  # prose wraps lines


PAGE = _page("mechanism-mr")


def _imported(factory: pytest.TempPathFactory, export: str) -> Path:
    target = factory.mktemp(export) / "store"
    import_store(ROOT / "results" / "studies" / export, target)
    return target


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _imported(tmp_path_factory, "mechanism-mr")


def _printed(capsys: pytest.CaptureFixture[str], run, argv: list[str]) -> str:
    assert run(argv) in (0, None)
    return capsys.readouterr().out


@pytest.mark.parametrize("page", sorted(PAGES))
def test_the_seed_table_regenerates_from_the_export(page, tmp_path_factory, capsys):
    export, rows = PAGES[page]
    out = _printed(capsys, reproduce_main, ["--store", str(_imported(tmp_path_factory, export))])
    cells = INTERVAL.findall("\n".join(line for line in out.splitlines() if rows is None or rows.search(line)))
    assert len(cells) >= 3  # plain and VDA Att Acc, and their paired difference
    missing = [cell for cell in cells if cell not in _page(page)]
    assert not missing, f"{page}.md lacks {missing}: paste `analysis.reproduce` again after re-exporting"


def test_the_per_checkpoint_and_transfer_tables_regenerate_from_the_export(store, capsys):
    summary = _printed(capsys, attack_workers_main, ["summary", "--store", str(store)])
    transfer = _printed(capsys, attack_workers_main, ["transfer-summary", "--store", str(store)])
    quoted = [line for text in (summary, transfer) for line in text.splitlines() if "vda-paper" in line]
    cells = INTERVAL.findall("\n".join(quoted))  # the page quotes vda-paper per checkpoint; strict by seed
    assert cells
    missing = [cell for cell in cells if cell.split(" [")[0] not in PAGE]
    assert not missing, f"mechanism-mr.md lacks {missing}: paste the summaries again after re-exporting"


def test_the_readmes_mechanism_numbers_come_from_the_export(store, capsys):
    """The README's paragraph on the authors' VDA quotes only intervals the export regenerates."""
    readme = (ROOT / "README.md").read_text()
    paragraph = " ".join(readme[readme.index("**The authors' VDA**"):].split("\n\n")[0].split())
    quoted = INTERVAL.findall(paragraph)
    assert quoted
    out = _printed(capsys, reproduce_main, ["--store", str(store)])
    assert all(cell in out for cell in quoted), (quoted, out)


def test_the_figures_numbers_regenerate_from_the_export(store, capsys):
    """Figure 4's (and, once run, Figure 3's) points on mechanism-mr.md are what `analysis.figures` prints."""
    cells = INTERVAL.findall(_printed(capsys, figures_main, ["--store", str(store)]))
    assert cells  # Figure 4: three arms x 4 epochs x (Ori Acc, Att Acc, Δ)
    missing = [cell for cell in cells if cell not in PAGE]
    assert not missing, f"mechanism-mr.md lacks {missing}: paste `analysis.figures` again after re-exporting"
