"""One self-contained HTML page per results store: the table, the plots and every attacked example.

    python -m attack_workers report --store results/vda-default/store --out results/vda-default

Why a page: researchers judge an attack by reading its examples, and a table of rates hides the
antonym swaps and non-words behind them. The page is one file with everything inline (CSS, JS,
plots as base64 PNG, the examples as one JSON blob), so it opens from a laptop, a mail attachment
or an artefact store with no server and no network.

Why the examples are JSON and rendered by the page's script: a sweep's store holds 50 checkpoints
x 1,000 examples, and 50,000 pre-rendered table rows make a browser stall for seconds. The blob
stores each distinct string once (the same example texts recur in every checkpoint) and the
script renders 200 rows at a time, only those the filters keep.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.plots import FIGURE3, headline_rows, plot_epochs, plot_hyperparameters, plot_pareto, rank
from analysis.reproduce import reproduction_table
from analysis.review import review_blob, review_sample
from analysis.tables import checkpoint_table, format_cells
from analysis.verdicts import join_verdicts, read_verdicts, reader_table
from attack_workers.results.store import ResultStore

REPORT_NAME = "report.html"
TEMPLATE = Path(__file__).with_name("report_template.html")
REVIEW_TAB = Path(__file__).with_name("review_tab.html")
PLACEHOLDER = re.compile(r"@@([A-Z]+)@@")
AUDIT_PREFIX = "audit_"  # every column named so is shown, also ones added after this page was written
EXAMPLE_FIELDS = ("example_id", "status", "label", "clean_pred", "adv_pred", "num_queries", "words_changed",
                  "original_text", "original_text_b", "perturbed_text", "perturbed_text_b")
INTERNED = {"example_id", "status", "original_text", "original_text_b", "perturbed_text", "perturbed_text_b"}
PLOT_CAPTIONS = {
    "plot_hyperparameters": "Original and attack accuracy vs the VDA hyperparameters that varied (paper Figure 3), "
                            "a row of panels per attack key, 95 % Wilson intervals pooled over the checkpoints "
                            "of a setting within the key.",
    "plot_epochs": "Dev accuracy per epoch and attack accuracy where an epoch was attacked (paper Figure 4).",
    "plot_pareto": "Accuracy vs robustness, a panel per attack key with its Pareto front ringed, 95 % Wilson "
                   "intervals as error bars.",
    "plot_importances": "Optuna fANOVA importance of each varied hyperparameter.",
}


def write_html(store: str | Path, out_dir: str | Path, plots: Mapping[str, Path] | None = None,
               title: str | None = None, review: int | None = None, review_seed: int = 0,
               verdicts: Sequence[str | Path] = ()) -> Path:
    """Write ``<out_dir>/report.html`` for ``store``; draw the plots unless ``plots`` (name -> PNG) are given.

    A sweep passes the plots ``analysis.summary`` has just drawn, so they are drawn once. ``review``:
    add a Review tab of that many successes per method and attack (``analysis.review``);
    ``verdicts``: reading-record CSVs, for a section with the reader-adjusted Att Acc (``analysis.verdicts``).
    """
    results = ResultStore(store)
    summary = results.load_summary()
    if summary.empty:
        raise ValueError(f"{results.root}: no attacked examples in this store; nothing to report")
    examples, checkpoints = results.load_examples(), results.load_checkpoints()
    out = Path(out_dir) / REPORT_NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        figures = plots if plots is not None else draw_plots(summary, checkpoints, Path(scratch))
        parts = {
            "TITLE": html.escape(title or results.root.resolve().parent.name),
            "META": html.escape(f"{len(summary)} attacked checkpoint(s) x attack key(s), {len(examples)} examples; "
                                f"store {results.root.resolve()}; written "
                                f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"),
            "SUMMARY": html_table(summary_table(summary), "summary"),
            "METHODS": methods_section(summary, examples),
            "PLOTS": plots_section(figures),
            "PROVENANCE": provenance_section(results, summary, checkpoints),
            "DATA": script_json(example_blob(examples)),
            "REVIEW": review_tab(summary, examples, review, review_seed),
            "READERS": readers_section(summary, examples, verdicts),
        }
    out.write_text(fill(TEMPLATE.read_text(), parts))
    return out


def fill(template: str, parts: Mapping[str, str]) -> str:
    """Replace every ``@@NAME@@`` in one pass, so no inserted text (an example's) is read as a placeholder."""
    names = set(PLACEHOLDER.findall(template))
    if names != set(parts):
        raise ValueError(f"{TEMPLATE}: placeholders {sorted(names)} do not match the parts {sorted(parts)}")
    return PLACEHOLDER.sub(lambda match: parts[match.group(1)], template)


# ---------------------------------------------------------------- tables


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The paper's columns per (checkpoint, attack key), as every table prints them (``tables``)."""
    return format_cells(checkpoint_table(summary))


def methods_section(summary: pd.DataFrame, examples: pd.DataFrame) -> str:
    """Methods over seeds with Δ Att Acc vs their base method (``analysis.reproduce``), where the store allows it.

    Δ needs the training config (strategy, VDA lambda and mode, seed) of each checkpoint, which a
    sweep's store has and a store of hand-picked checkpoints may lack: then the section says why,
    and the rest of the page is written all the same (a sweep ends by writing it).
    """
    try:
        table = reproduction_table(summary, examples)
    except KeyError as exc:
        return f"<p class=note>No per-method table: the checkpoints record no {html.escape(str(exc))}.</p>"
    except ValueError as exc:  # e.g. a method and its base attacked on different examples: nothing to pair
        return f"<p class=note>No per-method table: {html.escape(str(exc))}</p>"
    return html_table(table.drop(columns=[c for c in table if c.startswith("paper ")]), "methods")


def html_table(frame: pd.DataFrame, table_id: str) -> str:
    """A sortable table of ``frame``'s values as text (the page's script sorts by each cell's leading number)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f'<table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


# ---------------------------------------------------------------- review and readers


def review_tab(summary: pd.DataFrame, examples: pd.DataFrame, per_stratum: int | None, seed: int = 0) -> str:
    """The Review tab's markup and script ('' without ``per_stratum``): ``review_tab.html`` filled with
    ``review.review_blob`` of ``review.review_sample``."""
    if not per_stratum:
        return ""
    blob = review_blob(review_sample(summary, examples, per_stratum, seed), seed, per_stratum)
    return REVIEW_TAB.read_text().replace("@@REVIEWDATA@@", script_json(blob))


def readers_section(summary: pd.DataFrame, examples: pd.DataFrame, files: Sequence[str | Path]) -> str:
    """The report's "Readers' verdicts" section: ``verdicts.reader_table`` of ``files`` ('' without files)."""
    if not files:
        return ""
    labelled, unmatched = join_verdicts(examples, read_verdicts(files, examples))
    names = ", ".join(html.escape(Path(f).name) for f in files)
    skipped = (f"<p class=note>{len(unmatched)} verdict(s) joined no success of this store (another text, "
               "checkpoint or attack key) and are not applied.</p>" if len(unmatched) else "")
    return ('<section id="readers-section"><h2>Readers\' verdicts</h2><p class="note">From '
            f"{names}. Acceptance: the share of read successes a reader accepts, 95 % Wilson interval. Reader-"
            "adjusted Att Acc: the share of examples no reader-accepted attack broke (robust, or broken only by "
            "attacks a reader rejects), with a 95 % interval over the examples, seeds and the verdict sample "
            "(docs/attacks.md). Δ: paired with the base method of the same seed, where both have verdicts.</p>"
            f"{skipped}{html_table(reader_table(summary, labelled), 'readers')}</section>")


# ---------------------------------------------------------------- plots


def draw_plots(summary: pd.DataFrame, checkpoints: pd.DataFrame, directory: Path) -> dict[str, Path]:
    """The sweep's plots (``analysis.plots``) that this store has the columns for.

    Ranked on dev accuracy and attack accuracy when the manifests have dev accuracy, else on
    original and attack accuracy: a store of hand-picked checkpoints still gets its Pareto plot.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, also on machines without a display
    objectives = ("attack_acc", "dev_acc") if "metrics.dev_acc" in summary else ("clean_acc", "attack_acc")
    headline = headline_rows(summary)  # one point per checkpoint and attack key (a union's, not its attacks')
    plots = {"plot_pareto": plot_pareto(rank(headline, objectives), objectives, directory / "pareto_front.png")}
    if any(column in summary for column in FIGURE3):
        plots["plot_hyperparameters"] = plot_hyperparameters(headline, directory / "hyperparameters.png")
    if {"epoch", "metrics.dev_acc"} <= set(checkpoints.columns):
        plots["plot_epochs"] = plot_epochs(summary, checkpoints, directory / "epochs.png")
    return {name: path for name, path in plots.items() if path is not None}  # a panel of one value is left out


def plots_section(plots: Mapping[str, Path]) -> str:
    """Each PNG inline as base64 with its caption, in the order of ``PLOT_CAPTIONS``."""
    order = sorted(plots, key=lambda name: list(PLOT_CAPTIONS).index(name) if name in PLOT_CAPTIONS else 99)
    figures = []
    for name in order:
        data = base64.b64encode(Path(plots[name]).read_bytes()).decode()
        caption = PLOT_CAPTIONS.get(name, Path(plots[name]).stem)
        figures.append(f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return "".join(figures) or "<p class=note>No plots.</p>"


# ---------------------------------------------------------------- provenance


def provenance_section(results: ResultStore, summary: pd.DataFrame, checkpoints: pd.DataFrame) -> str:
    """What the store records about how its rows were made; what it does not record is named as missing."""
    keys = []
    for key, rows in summary.groupby("attack_key", sort=False):
        first = rows.iloc[0]
        params = {c[len("attack."):]: first[c] for c in rows.columns if c.startswith("attack.") and pd.notna(first[c])}
        keys.append(f"<tr><td><code>{html.escape(key)}</code></td><td>{html.escape(first['protocol'])}</td>"
                    f"<td>{html.escape(first['dataset'])}/{html.escape(first['split'])}</td><td>{len(rows)}</td>"
                    f"<td><code>{html.escape(json.dumps(params, default=str))}</code></td></tr>")
    commits = (checkpoints["git_commit"].replace("", "(not recorded)").value_counts()
               if "git_commit" in checkpoints else pd.Series(dtype=int))
    commit_items = "".join(f"<li><code>{html.escape(str(c))}</code>: {n} checkpoint(s)</li>"
                           for c, n in commits.items())
    sweep = results.root.resolve().parent / "sweep.yaml"
    sweep_block = (f"<details><summary>The sweep's configuration ({html.escape(str(sweep))})</summary>"
                   f"<pre>{html.escape(sweep.read_text())}</pre></details>" if sweep.is_file() else "")
    failures = results.load_failures()
    failure_items = "".join(f"<li>{html.escape(r.kind)} {html.escape(r.path)}: {html.escape(r.error)}</li>"
                            for r in failures.itertuples())
    return (
        "<h3>Attack keys</h3><p>An attack key hashes everything besides the checkpoint that decides an example's "
        "outcome (<code>protocols.attack_key</code>): the protocol and its parameters, the contents of the masked "
        "LM, the sentence encoder and the word lexicon, and the data split. The store records the key, the "
        "protocol, the data and the parameters; the MLM, encoder and lexicon hashes enter the key but are "
        "<b>not recorded separately</b> in this store.</p>"
        "<table><thead><tr><th>attack key</th><th>protocol</th><th>data</th><th>checkpoints</th>"
        f"<th>AttackParams</th></tr></thead><tbody>{''.join(keys)}</tbody></table>"
        f"<h3>Code</h3><ul>{commit_items or '<li>no checkpoint manifests recorded</li>'}</ul>"
        f"<h3>Command line</h3><p>This page was written by <code>{html.escape(shlex.join(sys.argv))}</code>. "
        "The store does not record the command lines of the evaluations that filled it.</p>"
        f"{sweep_block}<h3>Unresolved failures</h3><ul>{failure_items or '<li>none</li>'}</ul>"
    )


# ---------------------------------------------------------------- examples


def example_blob(examples: pd.DataFrame) -> dict[str, Any]:
    """Every example row as compact JSON: one array per row, each distinct string stored once.

    ``targets`` lists the (checkpoint, attack key) pairs, rows point at them by index; text
    fields point into ``strings``; substitutions are decoded pairs; ``audit`` names every
    ``audit_*`` column with its kind (flag, number or text), whose values follow in each row.
    """
    strings: dict[str, int] = {}

    def intern(value: Any) -> int | None:
        return None if missing(value) else strings.setdefault(str(value), len(strings))

    target_columns = ["checkpoint_hash", "attack_key", "run_id", "protocol"]
    targets = examples[target_columns].drop_duplicates(["checkpoint_hash", "attack_key"]).reset_index(drop=True)
    target_index = {(t.checkpoint_hash, t.attack_key): i for i, t in enumerate(targets.itertuples(index=False))}
    audit = [(c, audit_kind(examples[c])) for c in examples.columns if c.startswith(AUDIT_PREFIX)]
    columns = [
        [target_index[key] for key in zip(examples["checkpoint_hash"], examples["attack_key"])],
        *([intern(v) if name in INTERNED else json_value(v, "number") for v in examples[name].tolist()]
          for name in EXAMPLE_FIELDS),
        [[] if missing(pairs) else json.loads(pairs) for pairs in examples["substitutions"].tolist()],
        *([json_value(v, kind) for v in examples[name].tolist()] for name, kind in audit),
    ]
    rows = [list(row) for row in zip(*columns)]
    return {"fields": ["target", *EXAMPLE_FIELDS, "substitutions", *(c for c, _ in audit)],
            "audit": [{"name": c, "kind": kind} for c, kind in audit],
            "targets": targets.values.tolist(), "strings": list(strings), "rows": rows}


def audit_kind(values: pd.Series) -> str:
    """'flag' for a yes/no column, 'number' for a numeric one, else 'text'.

    Judged by the values, not the dtype: a column read from files with and without nulls (rows
    written before and after the audit existed) comes back as objects.
    """
    present = values.dropna()
    if len(present) and present.map(lambda v: isinstance(v, (bool, np.bool_))).all():
        return "flag"
    return "number" if present.map(lambda v: isinstance(v, (int, float, np.number))).all() else "text"


def missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def json_value(value: Any, kind: str) -> Any:
    """A cell as JSON: flags 1/0, numbers rounded to 4 places, text as is; missing (None, NaN) as null."""
    if missing(value):
        return None
    if kind == "flag":
        return int(bool(value))
    if kind == "text":
        return str(value)
    number = float(value)
    return int(number) if number.is_integer() else round(number, 4)


def script_json(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<`` at all, so no text (an example
    holding ``</script>`` or ``<!--``) can end the element early; JSON.parse reads ``\\u003c`` back as ``<``."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
