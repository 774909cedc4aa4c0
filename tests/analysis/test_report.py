"""The HTML report as a person sees it: headless Chromium opens the file, the page's script renders it.

The checks read the DOM Chromium dumps after the script ran, never the generated file's text:
the highlighted substitutions exist only once the page's JavaScript has rendered the examples.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

from attack_workers.cli import main
from analysis.report import example_blob, write_html
from attack_workers.results.store import EXAMPLE_SCHEMA, ResultStore

bs4 = pytest.importorskip("bs4")
BROWSER = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no Chromium on PATH: install Debian's `chromium` "
                                                           "package (make setup does where apt-get is available)")
HOSTILE = "<!-- </script> <em>not markup</em>"  # a text that must stay text inside the page's JSON and rows


@pytest.fixture()
def store(tmp_path, make_row):
    """Two checkpoints of one seed (plain, then VDA) on the same examples; one sentence-pair example."""
    store = ResultStore(tmp_path / "sweep" / "store")
    for i, (checkpoint, lam) in enumerate((("c1", 0.0), ("c2", 1.0))):
        store.write_checkpoint({"checkpoint_hash": checkpoint, "path": f"/runs/{checkpoint}",
                                "run_id": f"run-{checkpoint}", "epoch": 1, "created": float(i), "recorded_at": 0.0,
                                "git_commit": "0123abcd" * 5, "config.seed": 1,
                                "config.vda.lam": lam, "config.vda.mode": "sharp", "config.vda.sigma": 0.01,
                                "config.vda.k": 3, "metrics.dev_acc": 0.8 + i / 100})
    common = {"key": "k1", "protocol": "vda-paper"}
    store.write_examples([
        make_row("e1", "succeeded", "c1", original_text="a good and moving film", words_changed=1,
                 perturbed_text="a great and moving film", substitutions='[["good", "great"]]', audit_min_cos=0.81,
                 **common),
        make_row("e2", "succeeded", "c1", original_text="the plot is clever", perturbed_text="the plot is stupid",
                 words_changed=1, substitutions='[["clever", "stupid"]]', audit_antonym=True, audit_flagged=True,
                 audit_min_cos=0.71, **common),
        make_row("e3", "failed", "c1", original_text=HOSTILE, perturbed_text=HOSTILE, **common),
    ])
    store.write_examples([
        make_row("e1", "failed", "c2", original_text="a good and moving film", perturbed_text="a good and moving film",
                 **common),
        make_row("e2", "failed", "c2", original_text="the plot is clever", perturbed_text="the plot is clever",
                 **common),
        make_row("e3", "skipped", "c2", original_text=HOSTILE, perturbed_text=HOSTILE, **common),
        make_row("e4", "succeeded", "c2", original_text="the cat sat", original_text_b="a dog ran fast",
                 perturbed_text="the cat sat", perturbed_text_b="a dog ran quickly", words_changed=1,
                 substitutions='[["fast", "quickly"]]', audit_min_cos=0.9, **common),
    ])
    return store


def render(page: Path, tmp_path: Path, fragment: str = "") -> bs4.BeautifulSoup:
    """The DOM after the page's script ran, as Chromium dumps it."""
    result = subprocess.run([BROWSER, "--headless", "--disable-gpu", "--no-sandbox", *quiet(tmp_path), "--dump-dom",
                             f"{page.resolve().as_uri()}{fragment}"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return bs4.BeautifulSoup(result.stdout, "html.parser")


def quiet(tmp_path: Path) -> list[str]:
    """A throwaway profile, and none of the browser's own network traffic (updates, first-run pages)."""
    return [f"--user-data-dir={tmp_path / 'profile'}", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]


def marks(dom: bs4.BeautifulSoup, column: str) -> dict[str, str]:
    """Highlighted word -> its hover text, in the examples' ``orig`` or ``adv`` column."""
    return {m.get_text(): m["title"] for m in dom.select(f"#examples td.{column} mark")}


@needs_browser
def test_chromium_renders_the_table_and_the_highlighted_substitutions(store, tmp_path):
    page = write_html(store.root, tmp_path / "out")
    assert not bs4.BeautifulSoup(page.read_text(), "html.parser").select("mark"), "marks must come from the script"
    dom = render(page, tmp_path)

    summary = dom.select("#summary tbody tr")
    assert [[td.get_text() for td in tr.select("td")][:3] for tr in summary] == [
        ["run-c1", "c1", "vda-paper"], ["run-c2", "c2", "vda-paper"]]
    assert "0.333 [" in summary[0].get_text()  # c1: 1 robust example of 3, with its Wilson interval
    assert dom.select("#methods tbody tr"), "plain and VDA of one seed give a per-method table with Δ"
    # Pareto and Figure 3 (lambda 0 and 1); Figure 4 is left out: every checkpoint is of epoch 1 (issue 29.5)
    assert len(dom.select("#plots-section img")) == 2

    assert len(dom.select("#examples tbody tr")) == 7
    attacked, original = marks(dom, "adv"), marks(dom, "orig")
    assert attacked["great"] == "good → great\ncosine 0.810\nexample's audit flags: none"
    assert original["good"].startswith("good → great")
    assert "example's audit flags: antonym, flagged" in attacked["stupid"]
    assert attacked["quickly"].startswith("fast → quickly")  # the second sentence of a pair
    assert not dom.select("#examples em") and HOSTILE in dom.select_one("#examples").get_text()


@needs_browser
def test_the_address_filters_the_examples_and_a_screenshot_is_taken(store, tmp_path):
    page = write_html(store.root, tmp_path / "out")
    dom = render(page, tmp_path, "#status=succeeded&audit=audit_flagged")
    rows = dom.select("#examples tbody tr")
    assert len(rows) == 1 and "stupid" in rows[0].get_text()
    assert dom.select_one("#f-status")  # the filters render their options from the data
    flags = [f.name for f in EXAMPLE_SCHEMA if f.name.startswith("audit_") and pa.types.is_boolean(f.type)]
    assert [o["value"] for o in dom.select("#f-audit option")] == ["", "-", *flags]  # every flag the store has
    shot = tmp_path / "report.png"
    subprocess.run([BROWSER, "--headless", "--disable-gpu", "--no-sandbox", *quiet(tmp_path), "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1400,1600", page.resolve().as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_audit_columns_added_later_are_carried_and_missing_values_are_null(store):
    rows = store.load_examples().assign(audit_new_check=[True, None, False, False, True, None, False],
                                        audit_note=["swapped a name", *[None] * 6])
    blob = example_blob(rows)
    assert {"name": "audit_new_check", "kind": "flag"} in blob["audit"]
    assert {"name": "audit_min_cos", "kind": "number"} in blob["audit"]
    assert {"name": "audit_note", "kind": "text"} in blob["audit"]
    column = blob["fields"].index("audit_new_check")
    assert [r[column] for r in blob["rows"]] == [1, None, 0, 0, 1, None, 0]
    assert blob["strings"].count("a good and moving film") == 1  # each text once, however many rows share it


def test_cli_writes_the_report_and_refuses_an_empty_store(store, tmp_path, capsys):
    assert main(["report", "--store", str(store.root), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "report.html").stat().st_size > 10_000
    assert main(["report", "--store", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert "no attacked examples" in capsys.readouterr().err
