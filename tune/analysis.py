"""The sweep's table and plots, from a results store alone.

    python -m tune.analysis --store results/vda-default/store            # writes next to the store
    python -m tune.analysis --store results/vda-default/store --objectives dev_acc attack_acc --out /tmp/report

Writes ``summary.csv`` and ``summary.md`` (the paper's columns, best first: Pareto-optimal rows,
then by the first objective), ``report.html`` (the table, the plots and every attacked example in
one page: ``attack_workers.results.report``) and ``plots/``:

- ``accuracy_vs_hyperparameters.png``: original and attack accuracy vs sigma, k (and lambda when
  it varies); the baseline (lambda = 0) as horizontal lines (paper Figure 3);
- ``accuracy_vs_epoch.png``: dev accuracy per epoch of every trial, attack accuracy where an
  epoch was attacked, baseline vs VDA (paper Figure 4; attack every epoch with
  ``sweep.attack.checkpoints: every_epoch``);
- ``pareto_front.png``: the two objectives (or original vs attack accuracy), the Pareto front ringed;
- ``param_importances.png``: Optuna's fANOVA importance of each varied hyperparameter per objective.

Original and attack accuracies carry their 95 % Wilson interval over the attacked examples
(``attack_workers.results.uncertainty``): error bars on the plots (pooled over the checkpoints that share
a setting in Figure 3), ``Att Acc low``/``Att Acc high`` in the table. Two settings whose bars
overlap widely are not told apart by this many examples.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # python tune/analysis.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from attack_workers.results.uncertainty import format_number, wilson_interval  # noqa: E402
from tune.config import OBJECTIVES  # noqa: E402

log = logging.getLogger("tune.analysis")
COLUMNS = {"dev_acc": "metrics.dev_acc", "dev_loss": "metrics.dev_loss", "clean_acc": "clean_acc",
           "attack_acc": "attack_acc"}  # objective -> summary column
LAMBDA = "config.vda.lam"
FIGURE3 = ("config.vda.sigma", "config.vda.k")


def load_results(store: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(one row per attacked checkpoint with its manifest, every recorded checkpoint, unresolved failures)."""
    from attack_workers.results.store import ResultStore

    store = ResultStore(store)
    if not store.root.is_dir():
        raise FileNotFoundError(f"{store.root}: no results store here; pass the store/ directory of a sweep")
    return store.load_summary(), store.load_checkpoints(), store.load_failures()


def varied_config(frame: pd.DataFrame) -> list[str]:
    """``config.*`` columns whose value differs between rows: what distinguishes the configurations."""
    columns = [c for c in frame.columns if c.startswith("config.")]
    return [c for c in columns if frame[c].astype(str).nunique() > 1]


def pareto_mask(frame: pd.DataFrame, objectives: Sequence[str]) -> pd.Series:
    """True for rows no other row beats on every objective (and strictly on one)."""
    signs = [1 if OBJECTIVES[o].mode == "max" else -1 for o in objectives]
    points = [[s * row[COLUMNS[o]] for o, s in zip(objectives, signs)] for _, row in frame.iterrows()]
    usable = [all(not math.isnan(v) for v in p) for p in points]

    def dominated(p: list[float]) -> bool:
        return any(ok and all(a >= b for a, b in zip(q, p)) and any(a > b for a, b in zip(q, p))
                   for q, ok in zip(points, usable))

    return pd.Series([ok and not dominated(p) for p, ok in zip(points, usable)], index=frame.index)


def rank(summary: pd.DataFrame, objectives: Sequence[str]) -> pd.DataFrame:
    """Rows best first: Pareto-optimal ones, then by each objective in order."""
    missing = [o for o in objectives if COLUMNS[o] not in summary]
    if missing:
        raise ValueError(f"objective(s) {missing} have no column in this store (its manifests lack "
                         f"{[COLUMNS[o] for o in missing]}); rank by clean_acc and attack_acc instead")
    frame = summary.copy()
    frame["pareto"] = pareto_mask(frame, objectives) if len(frame) else []
    keys = ["pareto"] + [COLUMNS[o] for o in objectives]
    ascending = [False] + [OBJECTIVES[o].mode == "min" for o in objectives]
    return frame.sort_values(keys, ascending=ascending, kind="stable", na_position="last").reset_index(drop=True)


def paper_table(ranked: pd.DataFrame) -> pd.DataFrame:
    """The paper's columns (Tables 2-3) plus what identifies each row."""
    varied = varied_config(ranked)
    baseline = _baseline(ranked)

    def describe(row: pd.Series, is_baseline: bool) -> str:  # VDA's settings mean nothing without VDA
        shown = [c for c in varied if not (is_baseline and c.startswith("config.vda.") and c != LAMBDA)]
        return " ".join(f"{c[len('config.'):]}={row[c]}" for c in shown) or "-"

    table = pd.DataFrame({
        "rank": range(1, len(ranked) + 1),
        "run": ranked["run_id"],
        "configuration": [describe(row, b) for (_, row), b in zip(ranked.iterrows(), baseline)],
        "epoch": ranked.get("epoch", pd.Series([None] * len(ranked))),
        "Dev Acc": ranked.get("metrics.dev_acc", pd.Series([math.nan] * len(ranked))),
        "Ori Acc": ranked["clean_acc"], "Att Acc": ranked["attack_acc"],
        "Att Acc low": ranked["attack_acc_low"], "Att Acc high": ranked["attack_acc_high"],
        "Q Num": ranked["avg_queries"],
        "Perturb %": ranked["perturbed_pct"], "n": ranked["num_examples"],
        # the validity audit: share of successful attacks that are antonym swaps, polarity flips or non-words
        "Flagged": ranked.get("flagged_share", pd.Series([math.nan] * len(ranked))),
        "pareto": ranked["pareto"].map({True: "*", False: ""}),
    })
    if ranked["protocol"].nunique() > 1:
        table.insert(3, "protocol", ranked["protocol"])
    if "attack" in ranked and ranked["attack"].nunique() > 1:  # several attacks: a row each, and the union's
        table.insert(3, "attack", list(ranked["attack"]))
    return table


def to_markdown(table: pd.DataFrame) -> str:
    """A Markdown table; floats as every results table prints them (``attack_workers.results.uncertainty.format_number``)."""
    rows = [[format_number(v) if isinstance(v, float) else str(v) for v in row]
            for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


# ---------------------------------------------------------------- plots


def _baseline(frame: pd.DataFrame) -> pd.Series:
    return frame[LAMBDA].astype(float) == 0 if LAMBDA in frame else pd.Series(False, index=frame.index)


def _pooled(rows: pd.DataFrame, column: str) -> tuple[float, float, float]:
    """An accuracy column over several checkpoints as one proportion: (value, Wilson low, Wilson high).

    Pooling the counts (rather than averaging the rates) gives the interval of all the examples
    behind a plotted point; with the same n per checkpoint the value is the mean of the rates.
    """
    n = int(rows["num_examples"].sum())
    successes = round(float((rows[column] * rows["num_examples"]).sum()))
    return (successes / n if n else math.nan), *wilson_interval(successes, n)


def _error_bars(value: Any, low: Any, high: Any) -> np.ndarray:
    """matplotlib's ``yerr``/``xerr``: distances from the value down to ``low`` and up to ``high``."""
    return np.array([np.subtract(value, low), np.subtract(high, value)], dtype=float)


def _interval_of(frame: pd.DataFrame, objective: str) -> np.ndarray | None:
    """Per-checkpoint error bars of an objective that has an interval column (clean or attack accuracy)."""
    column = COLUMNS[objective]
    if f"{column}_low" not in frame:
        return None  # dev accuracy and loss come from training, without their example counts
    return _error_bars(frame[column], frame[f"{column}_low"], frame[f"{column}_high"])


def plot_hyperparameters(summary: pd.DataFrame, path: Path) -> Path:
    import matplotlib.pyplot as plt

    params = list(FIGURE3) + ([LAMBDA] if LAMBDA in varied_config(summary) else [])
    params = [p for p in params if p in summary]
    fig, axes = plt.subplots(1, max(1, len(params)), figsize=(4.5 * max(1, len(params)), 3.8), squeeze=False)
    base, vda = summary[_baseline(summary)], summary[~_baseline(summary)]
    for ax, param in zip(axes[0], params):
        rows = vda if param != LAMBDA else summary
        for column, label, color in (("clean_acc", "Ori Acc", "tab:blue"), ("attack_acc", "Att Acc", "tab:red")):
            points = pd.DataFrame({setting: _pooled(group, column) for setting, group
                                   in rows.groupby(rows[param].astype(float))}, index=["value", "low", "high"]).T
            ax.errorbar(points.index, points["value"], yerr=_error_bars(points["value"], points["low"], points["high"]),
                        fmt="o-", capsize=3, color=color, label=f"VDA {label}")
            if len(base) and param != LAMBDA:
                value, low, high = _pooled(base, column)
                ax.axhline(value, color=color, ls="--", lw=1, label=f"baseline {label}")
                ax.axhspan(low, high, color=color, alpha=0.08)
        if param == "config.vda.sigma" and len(rows) and rows[param].astype(float).min() > 0:
            ax.set_xscale("log")
        ax.set_xlabel(param[len("config."):])
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Original and attack accuracy vs VDA hyperparameters (paper Fig. 3)")
    return _save(fig, path)


def headline_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """One summary row per checkpoint and protocol: the union's where several attacks ran, else the attack's.

    A plot draws one point per checkpoint and protocol; the per-attack rows stay in the tables.
    """
    if summary.empty or "attack" not in summary:
        return summary
    first = summary["attack"].map(lambda attack: 0 if attack == "union" else 1)
    return (summary.assign(_first=first).sort_values("_first", kind="stable")
            .drop_duplicates(["checkpoint_hash", "protocol"]).drop(columns="_first"))


def plot_epochs(summary: pd.DataFrame, checkpoints: pd.DataFrame, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    headline = headline_rows(summary)
    protocols = sorted(headline["protocol"].unique()) if len(headline) else []
    for run_id, rows in checkpoints.sort_values("epoch").groupby("run_id"):
        color = "tab:gray" if _baseline(rows).all() else "tab:green"
        kind = "baseline" if _baseline(rows).all() else "VDA"
        ax.plot(rows["epoch"], rows["metrics.dev_acc"], "o-", color=color, alpha=0.8, label=f"{kind} dev acc")
        for marker, protocol in zip("sD^v", protocols):
            attacked = headline[headline["protocol"] == protocol].set_index("checkpoint_hash")
            hit = rows[rows["checkpoint_hash"].isin(attacked.index)]
            if len(hit):
                acc = attacked.loc[hit["checkpoint_hash"]]
                label = f"{kind} attack acc" + (f" ({protocol})" if len(protocols) > 1 else "")
                ax.errorbar(hit["epoch"], acc["attack_acc"], fmt=f"{marker}--", capsize=3, color=color, alpha=0.8,
                            yerr=_error_bars(acc["attack_acc"], acc["attack_acc_low"], acc["attack_acc_high"]),
                            label=label)
    handles = dict(zip(*reversed(ax.get_legend_handles_labels())))  # one legend entry per label
    ax.legend(handles.values(), handles.keys(), fontsize=8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.set_title("Accuracy per training epoch, baseline vs VDA (paper Fig. 4)")
    return _save(fig, path)


def plot_pareto(ranked: pd.DataFrame, objectives: Sequence[str], path: Path) -> Path:
    """The trade-off of two objectives (the sweep's, else Ori Acc vs Att Acc), Pareto-optimal points ringed.

    Accuracies measured by the attack carry their 95 % Wilson interval as error bars: a point off
    the front whose bars reach it is not shown to be worse.
    """
    import matplotlib.pyplot as plt

    pair = list(objectives) if len(objectives) == 2 else ["clean_acc", "attack_acc"]
    x, y = sorted(pair, key=lambda o: o == "attack_acc")  # robustness on the y axis when it is an objective
    front = ranked[pareto_mask(ranked, (x, y))].sort_values(COLUMNS[x])
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.errorbar(ranked[COLUMNS[x]], ranked[COLUMNS[y]], xerr=_interval_of(ranked, x), yerr=_interval_of(ranked, y),
                fmt="none", ecolor="lightgray", zorder=0)
    ax.scatter(ranked[COLUMNS[x]], ranked[COLUMNS[y]], c=["tab:gray" if b else "tab:green" for b in _baseline(ranked)])
    ax.plot(front[COLUMNS[x]], front[COLUMNS[y]], "k--o", lw=1, ms=12, mfc="none", label="Pareto front")
    for _, row in ranked.iterrows():
        ax.annotate(str(row["run_id"])[-14:], (row[COLUMNS[x]], row[COLUMNS[y]]), fontsize=7, xytext=(4, 4),
                    textcoords="offset points")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title("Accuracy vs robustness (gray: baseline, green: VDA)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def param_importances(summary: pd.DataFrame, objectives: Sequence[str]) -> dict[str, dict[str, float]]:
    """Optuna's fANOVA importances of the varied ``config.*`` columns, per objective (needs >= 3 rows)."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    params = varied_config(summary)
    if len(summary) < 3 or not params:
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions, values = {}, {}
    for column in params:
        numeric = pd.to_numeric(summary[column], errors="coerce")
        if numeric.notna().all():
            distributions[column] = optuna.distributions.FloatDistribution(float(numeric.min()), float(numeric.max()))
            values[column] = numeric.astype(float).tolist()
        else:
            labels = sorted(summary[column].astype(str).unique())
            distributions[column] = optuna.distributions.CategoricalDistribution(labels)
            values[column] = summary[column].astype(str).tolist()
    directions = ["maximize" if OBJECTIVES[o].mode == "max" else "minimize" for o in objectives]
    study = optuna.create_study(directions=directions)
    for i in range(len(summary)):
        found = [float(summary[COLUMNS[o]].iloc[i]) for o in objectives]
        if all(math.isfinite(v) for v in found):
            study.add_trial(optuna.trial.create_trial(params={c: values[c][i] for c in params},
                                                      distributions=distributions, values=found))
    if len(study.trials) < 3:
        return {}
    importances = {}
    for i, objective in enumerate(objectives):
        try:
            importances[objective] = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0),
                                                           target=lambda t, i=i: t.values[i])
        except RuntimeError as exc:  # e.g. every configuration scored the same: nothing to attribute
            log.info("no importances for %s: %s", objective, exc)
    return importances


def plot_importances(importances: dict[str, dict[str, float]], path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(importances), figsize=(5 * len(importances), 3.5), squeeze=False)
    for ax, (objective, scores) in zip(axes[0], importances.items()):
        names = [n[len("config."):] for n in scores]
        ax.barh(names[::-1], list(scores.values())[::-1], color="tab:purple")
        ax.set_title(f"importance for {objective}")
        ax.set_xlim(0, 1)
    fig.suptitle("Hyperparameter importances (Optuna fANOVA)")
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- everything at once


def write_report(store: str | Path, out_dir: str | Path, objectives: Sequence[str], optuna_url: str | None = None,
                 title: str = "sweep") -> tuple[str, dict[str, Path]]:
    """Write the table (CSV, Markdown), plots and HTML report; return the Markdown table and the written files."""
    import matplotlib

    from attack_workers.results.report import write_html

    matplotlib.use("Agg")  # files only, also on machines without a display
    summary, checkpoints, failures = load_results(store)
    out_dir, files = Path(out_dir), {}
    problems = "".join(f"\n- not attacked: {row.path}: {row.error}" for row in failures.itertuples()
                       if row.kind == "checkpoint")
    problems += "".join(f"\n- {len(row.example_ids)} example(s) of {row.path} failed: {row.error}"
                        for row in failures.itertuples() if row.kind == "shard")
    if summary.empty:
        return "(no attack results in the store yet)" + problems, files
    ranked = rank(summary, objectives)
    table = paper_table(ranked)
    files["summary_csv"] = out_dir / "summary.csv"
    table.to_csv(files["summary_csv"], index=False)
    files["results_csv"] = out_dir / "results.csv"  # every column: hyperparameters, training and attack metrics
    ranked.to_csv(files["results_csv"], index=False)
    markdown = to_markdown(table) + problems
    objective_text = " and ".join(objectives)
    header = f"# {title}: best first (Pareto-optimal on {objective_text} marked *)\n\n"
    footer = f"\n\nOptuna study: {optuna_url} (optuna-dashboard {optuna_url})\n" if optuna_url else "\n"
    files["summary_md"] = out_dir / "summary.md"
    files["summary_md"].write_text(header + markdown + footer)
    plots, headline = out_dir / "plots", headline_rows(summary)
    files["plot_hyperparameters"] = plot_hyperparameters(headline, plots / "accuracy_vs_hyperparameters.png")
    if len(checkpoints):
        files["plot_epochs"] = plot_epochs(summary, checkpoints, plots / "accuracy_vs_epoch.png")
    files["plot_pareto"] = plot_pareto(rank(headline, objectives), objectives, plots / "pareto_front.png")
    importances = param_importances(headline, objectives)
    if importances:
        files["plot_importances"] = plot_importances(importances, plots / "param_importances.png")
    else:
        log.info("no importance plot: it needs >= 3 attacked configurations that differ in a hyperparameter")
    files["report_html"] = write_html(store, out_dir, {k: v for k, v in files.items() if k.startswith("plot_")}, title)
    return markdown, files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tune.analysis", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True, type=Path, help="a results store (a sweep's <output>/<name>/store)")
    parser.add_argument("--out", type=Path, help="where to write the table and plots (default: the store's parent)")
    parser.add_argument("--objectives", nargs="+", default=["attack_acc", "dev_acc"], choices=sorted(OBJECTIVES),
                        help="ranking objectives, first is primary (default: attack_acc dev_acc)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        table, files = write_report(args.store, args.out or args.store.parent, args.objectives,
                                    title=args.store.parent.name)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table)
    print("\n" + "\n".join(f"{name}: {path}" for name, path in files.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
