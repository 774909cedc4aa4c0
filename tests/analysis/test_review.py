"""The review sample (stratified, seeded, blind), the terminal reader, and the Review tab in a real browser.

The browser test drives headless Chromium (Debian's package, ``make setup`` installs it) through
Playwright's Python package with ``executable_path``: Playwright never downloads a browser here. It
opens a report written from a planted store, answers 5 items with the keyboard, downloads the
verdicts, reads the CSV back through ``verdicts.read_verdicts`` and checks that a reload keeps the answers.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pandas as pd
import pytest

from attack_workers.cli import main
from analysis.report import write_html
from analysis.review import RECORD_COLUMNS, highlight, read_in_terminal, review_sample
from attack_workers.results.store import ResultStore
from analysis.verdicts import join_verdicts, read_verdicts


def _chromium() -> str | None:
    """Debian's Chromium binary (the /usr/bin/chromium wrapper script execs it), or one on PATH."""
    real = Path("/usr/lib/chromium/chromium")
    return str(real) if real.is_file() else next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))),
                                                 None)


CHROMIUM = _chromium()


@pytest.fixture()
def store(tmp_path, make_row, plain_and_vda):
    """Plain (c1) and VDA (c2) of one seed under one attack key: 5 and 4 successes, a failure each; a pair."""
    store = ResultStore(tmp_path / "sweep" / "store")
    plain_and_vda(store)
    words = [("good", "fine"), ("funny", "comic"), ("dull", "boring"), ("smart", "clever"), ("long", "lengthy")]
    for checkpoint, count in (("c1", 5), ("c2", 4)):
        rows = [make_row(f"e{i}", "succeeded", checkpoint, key="k1", protocol="strict",
                         original_text=f"a {a} film, {i} minutes", perturbed_text=f"a {b} film, {i} minutes",
                         substitutions=f'[["{a}", "{b}"]]', audit_flagged=i == 0, audit_antonym=i == 0)
                for i, (a, b) in enumerate(words[:count])]
        rows.append(make_row("e9", "failed", checkpoint, key="k1", protocol="strict"))
        store.write_examples(rows)
    store.write_examples([make_row("p1", "succeeded", "c1", key="k1", protocol="strict", original_text="the cat sat",
                                   original_text_b="a dog ran fast", perturbed_text="the cat sat",
                                   perturbed_text_b="a dog ran quickly", substitutions='[["fast", "quickly"]]')])
    return store


def test_the_sample_is_stratified_seeded_and_leaves_unions_out(store):
    summary, examples = store.load_summary(), store.load_examples()
    sample = review_sample(summary, examples, 3, seed=1)
    assert sample.groupby("stratum").size().to_dict() == {"BERT / k1": 3, "BERT+VDA (sharp) [vda.lam=1.0] / k1": 3}
    assert (sample["status"] == "succeeded").all() and sample["item"].is_unique
    again = review_sample(summary, examples, 3, seed=1)
    assert again["item"].tolist() == sample["item"].tolist()  # seeded: the same sample, the same order
    assert review_sample(summary, examples, 3, seed=2)["item"].tolist() != sample["item"].tolist()
    assert len(review_sample(summary, examples, 50)) == 10  # every success where a stratum has fewer
    with_union = pd.concat([examples, examples.assign(attack="union", attack_key="u1")])
    assert len(review_sample(summary, with_union, 50)) == 10
    with pytest.raises(ValueError, match="at least 1"):
        review_sample(summary, examples, 0)


def test_the_terminal_reader_writes_records_and_resumes(store, tmp_path):
    sample = review_sample(store.load_summary(), store.load_examples(), 2)
    out, shown = tmp_path / "verdicts.csv", io.StringIO()
    answers = iter(["x", "a", "o", "wrong register", "s", "q"])  # an unknown key is asked again
    assert read_in_terminal(sample, out, "ana", ask=lambda _: next(answers), show=shown, clock=lambda: 0.0) == 2
    assert "[[" in shown.getvalue()  # the substitutions are marked
    records = pd.read_csv(out, keep_default_na=False)
    assert list(records.columns) == RECORD_COLUMNS
    assert records[["verdict", "reason", "reviewer", "time"]].values.tolist() == [
        ["acceptable", "", "ana", "1970-01-01T00:00:00Z"], ["reject", "other: wrong register", "ana",
                                                           "1970-01-01T00:00:00Z"]]
    later = iter(["m", "l", "q"])  # resumes: the first two are not asked again, the skipped one is
    assert read_in_terminal(sample, out, "ana", ask=lambda _: next(later), show=io.StringIO()) == 2
    records = pd.read_csv(out, keep_default_na=False)
    assert records["reason"].tolist()[2:] == ["meaning changed", "label changed"]
    skipped = sample.iloc[2]  # skipped in the first session, asked again in the second
    assert tuple(records.loc[2, ["checkpoint_hash", "example_id"]]) == (skipped["checkpoint_hash"],
                                                                       skipped["example_id"])
    examples = store.load_examples()
    labelled, unmatched = join_verdicts(examples, read_verdicts([out], examples))
    assert labelled["verdict"].notna().sum() == 4 and unmatched.empty
    with pytest.raises(ValueError, match="reviewer"):
        read_in_terminal(sample, out, " ")


def test_highlight_marks_whole_words_in_order():
    assert highlight("a good goodness, good", ["good", "good"], color=False) == "a [[good]] goodness, [[good]]"
    assert highlight("x", ["absent"], color=True) == "x"


def test_cli_review_and_report_review(store, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("analysis.report.draw_plots", lambda *_: {})  # plots: test_report.py's
    answers = iter(["a", "q"])
    monkeypatch.setattr("builtins.input", lambda _: next(answers))
    out = tmp_path / "v.csv"
    assert main(["review", "--store", str(store.root), "-n", "2", "--reviewer", "bo", "--out", str(out)]) == 0
    assert "1 verdict(s) written" in capsys.readouterr().out and len(pd.read_csv(out)) == 1
    assert main(["report", "--store", str(store.root), "--out", str(tmp_path / "r"), "--review", "2"]) == 0
    page = (tmp_path / "r" / "report.html").read_text()
    assert 'id="review-data"' in page and "@@" not in page
    assert main(["report", "--store", str(store.root), "--out", str(tmp_path / "plain")]) == 0
    assert 'id="review-data"' not in (tmp_path / "plain" / "report.html").read_text()


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: install Debian's `chromium` package (make setup does "
                                             "where apt-get is available and it runs as root)")
def test_review_tab_in_chromium_keyboard_download_and_reload(store, tmp_path):
    from playwright import sync_api  # the test extra installs it: a missing package is a failed set-up, not a skip
    page_path = write_html(store.root, tmp_path / "out", plots={}, review=3)
    examples = store.load_examples()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            context = browser.new_context(accept_downloads=True)  # one profile: local storage survives a reload
            page = context.new_page()
            page.goto(page_path.resolve().as_uri())
            page.click("#r-open")
            assert page.is_visible("#review-section") and not page.is_visible("#examples-section")
            assert page.inner_text("#r-progress") == "0 of 6 answered"
            shown = page.inner_text("#review-section")
            for hidden in ("run-c1", "run-c2", "c1", "strict", "bert-attack", "antonym", "k1", "VDA", "BERT"):
                assert hidden not in shown  # the tab shows no model, method, attack or audit
            assert page.locator("#r-attacked mark").count() >= 1  # the substitution is highlighted

            page.click("#r-reviewer")
            page.keyboard.type("tester")
            page.locator("#r-reviewer").blur()
            first_items = []
            for key in ("a", "g", "m", "l"):
                first_items.append(page.inner_text("#r-attacked"))
                page.keyboard.press(key)
            first_items.append(page.inner_text("#r-attacked"))
            page.keyboard.press("o")
            page.keyboard.type("odd, \"quoted\" word")
            page.keyboard.press("Enter")
            assert page.inner_text("#r-progress") == "5 of 6 answered"
            assert page.inner_text("#r-position") == "6 of 6"  # moved on to the one unanswered item

            with page.expect_download() as download:
                page.click("#r-download")
            csv_path = tmp_path / "downloaded.csv"
            download.value.save_as(csv_path)

            page.reload()  # the address keeps the tab open (#review), local storage the answers
            assert page.is_visible("#review-section")
            assert page.inner_text("#r-progress") == "5 of 6 answered"
            assert page.inner_text("#r-position") == "6 of 6" and page.input_value("#r-reviewer") == "tester"
            page.keyboard.press("ArrowLeft")
            assert page.inner_text("#r-verdict") == "reject (other: odd, \"quoted\" word)"
        finally:
            browser.close()

    rows = pd.read_csv(csv_path, keep_default_na=False)
    assert list(rows.columns) == RECORD_COLUMNS and len(rows) == 5
    assert rows[["verdict", "reason"]].values.tolist() == [
        ["acceptable", ""], ["reject", "grammar"], ["reject", "meaning changed"], ["reject", "label changed"],
        ["reject", 'other: odd, "quoted" word']]
    assert (rows["reviewer"] == "tester").all() and rows["time"].str.match(r"\d{4}-\d\d-\d\dT").all()
    for shown_text, text, text_b in zip(first_items, rows["perturbed_text"], rows["perturbed_text_b"]):
        assert text in shown_text and text_b in shown_text  # each row is the item the key answered
    labelled, unmatched = join_verdicts(examples, read_verdicts([csv_path], examples))
    assert unmatched.empty and labelled["verdict"].notna().sum() == 5  # every downloaded row joins its store row
    flagged = examples.set_index(["checkpoint_hash", "example_id"])["audit_flagged"]
    assert [str(bool(flagged[(c, e)])) for c, e in zip(rows["checkpoint_hash"], rows["example_id"])] == \
        rows["audit_flagged"].astype(str).tolist()  # carried to the CSV, never shown
