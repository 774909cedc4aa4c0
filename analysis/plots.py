"""The sweep's ranking and plots, from a store's summary: what ``analysis.summary`` writes to ``plots/``.

- ``accuracy_vs_hyperparameters.png``: original and attack accuracy vs each of sigma, k and lambda
  that varies; the baseline (lambda = 0) as horizontal lines (paper Figure 3);
- ``accuracy_vs_epoch.png``: dev accuracy per epoch of every trial, attack accuracy where an
  epoch was attacked, baseline vs VDA (paper Figure 4; attack every epoch with
  ``sweep.attack.checkpoints: every_epoch``);
- ``pareto_front.png``: the two objectives (or original vs attack accuracy), the Pareto front ringed;
- ``param_importances.png``: Optuna's fANOVA importance of each varied hyperparameter per objective.

Every plot draws one panel (or series) per attack key (protocol, attack set, versions:
``analysis.tables.key_labels``), never one point from two keys. A panel whose axis would hold a
single value (a setting the sweep did not vary; one epoch) is left out. Original and attack
accuracies carry their 95 % Wilson interval over the attacked examples
(``attack_workers.results.uncertainty``): error bars on the plots (pooled over the checkpoints of
one key that share a setting in Figure 3), ``Att Acc low``/``Att Acc high`` in the table. Two
settings whose bars overlap widely are not told apart by this many examples.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from analysis.methods import varied_config
from analysis.tables import checkpoint_table, key_labels
from attack_workers.results.keys import UNION
from attack_workers.results.store import ResultStore
from attack_workers.results.uncertainty import format_number, wilson_interval
from tune.config import OBJECTIVES

log = logging.getLogger("analysis.plots")
COLUMNS = {"dev_acc": "metrics.dev_acc", "dev_loss": "metrics.dev_loss", "clean_acc": "clean_acc",
           "attack_acc": "attack_acc"}  # objective -> summary column
LAMBDA = "config.vda.lam"
FIGURE3 = ("config.vda.sigma", "config.vda.k")


def load_results(store: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(one row per attacked checkpoint with its manifest, every recorded checkpoint, unresolved failures)."""
    store = ResultStore(store)
    if not store.root.is_dir():
        raise FileNotFoundError(f"{store.root}: no results store here; pass the store/ directory of a sweep")
    return store.load_summary(), store.load_checkpoints(), store.load_failures()


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
    """Rows grouped by attack key, the headline keys first (``headline_rows``), and best first within a key:
    its Pareto-optimal rows (``pareto``: computed among the rows of that key only), then by each objective.

    Why per key: a union's Att Acc is never above its attacks', so a front over every row would star
    single attacks and could star the union (the sweep's objective) only where it ties them.
    """
    missing = [o for o in objectives if COLUMNS[o] not in summary]
    if missing:
        raise ValueError(f"objective(s) {missing} have no column in this store (its manifests lack "
                         f"{[COLUMNS[o] for o in missing]}); rank by clean_acc and attack_acc instead")
    frame = summary.copy()
    has_keys = "attack_key" in frame and len(frame)
    frame["key"] = key_labels(frame) if has_keys else ""
    frame["pareto"] = False
    for _, rows in frame.groupby("key", sort=False):
        frame.loc[rows.index, "pareto"] = pareto_mask(rows, objectives)
    frame["_headline"] = frame.index.isin(headline_rows(frame).index) if has_keys else True
    keys = ["_headline", "key", "pareto"] + [COLUMNS[o] for o in objectives]
    ascending = [False, True, False] + [OBJECTIVES[o].mode == "min" for o in objectives]
    return (frame.sort_values(keys, ascending=ascending, kind="stable", na_position="last")
            .drop(columns="_headline").reset_index(drop=True))


def paper_table(ranked: pd.DataFrame) -> pd.DataFrame:
    """The per-checkpoint table (``tables.checkpoint_table``) in ranked order, with what ranks
    and identifies each row: its rank within its key, the key, the configuration, epoch and dev accuracy."""
    varied = varied_config(ranked)
    baseline = _baseline(ranked)

    def describe(row: pd.Series, is_baseline: bool) -> str:  # VDA's settings mean nothing without VDA
        shown = [c for c in varied if not (is_baseline and c.startswith("config.vda.") and c != LAMBDA)]
        return " ".join(f"{c[len('config.'):]}={row[c]}" for c in shown) or "-"

    table = checkpoint_table(ranked, sort=False)
    identity = pd.DataFrame({
        "rank": ranked.groupby("key", sort=False).cumcount().to_numpy() + 1,
        "key": ranked["key"].to_numpy(),
        "configuration": [describe(row, b) for (_, row), b in zip(ranked.iterrows(), baseline)],
        "epoch": ranked.get("epoch", pd.Series([None] * len(ranked))).to_numpy(),
        "Dev Acc": ranked.get("metrics.dev_acc", pd.Series([math.nan] * len(ranked))).astype(float).to_numpy(),
    })
    table.insert(0, "rank", identity["rank"])
    table.insert(1, "key", identity["key"])
    position = list(table.columns).index("n")
    for offset, column in enumerate(("configuration", "epoch", "Dev Acc")):
        table.insert(position + offset, column, identity[column])
    table["pareto"] = ranked["pareto"].map({True: "*", False: ""}).to_numpy()
    return table


def to_markdown(table: pd.DataFrame) -> str:
    """A Markdown table; floats as every results table prints them (``results.uncertainty.format_number``)."""
    rows = [[format_number(v) if isinstance(v, float) else str(v) for v in row]
            for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


# ---------------------------------------------------------------- plots


def _baseline(frame: pd.DataFrame) -> pd.Series:
    return frame[LAMBDA].astype(float) == 0 if LAMBDA in frame else pd.Series(False, index=frame.index)


def _pooled(rows: pd.DataFrame, column: str) -> tuple[float, float, float]:
    """An accuracy column over several checkpoints of one attack key as one proportion: (value, Wilson low, high).

    Pooling the counts (rather than averaging the rates) gives the interval of all the examples
    behind a plotted point; with the same n per checkpoint the value is the mean of the rates.
    Callers pass the rows of one key: two keys are two measurements, never one point.
    """
    if "key" in rows and rows["key"].nunique() > 1:
        raise ValueError(f"_pooled: rows of several attack keys ({', '.join(sorted(rows['key'].unique()))}); "
                         "pool within one key")
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


def varied_settings(summary: pd.DataFrame) -> list[str]:
    """Figure 3's settings (sigma, k among the VDA runs; lambda among all) that take two or more values."""
    vda = summary[~_baseline(summary)]
    return [p for p in (*FIGURE3, LAMBDA) if p in summary
            and (summary if p == LAMBDA else vda)[p].astype(float).nunique() > 1]


def plot_hyperparameters(summary: pd.DataFrame, path: Path) -> Path | None:
    """Figure 3: a row of panels per attack key, a panel per setting that varied; None when none varied."""
    import matplotlib.pyplot as plt

    params = varied_settings(summary)
    if not params or summary.empty:
        return None
    frame = summary.assign(key=key_labels(summary)) if "key" not in summary else summary
    keys = list(dict.fromkeys(frame["key"]))
    fig, axes = plt.subplots(len(keys), len(params), figsize=(4.5 * len(params), 3.8 * len(keys)), squeeze=False)
    for panels, key in zip(axes, keys):
        rows = frame[frame["key"] == key]
        base, vda = rows[_baseline(rows)], rows[~_baseline(rows)]
        for ax, param in zip(panels, params):
            _draw_setting(ax, vda if param != LAMBDA else rows, base if param != LAMBDA else base.iloc[0:0], param)
            ax.set_title(key, fontsize=8)
        panels[0].legend(fontsize=8)
    fig.suptitle("Original and attack accuracy vs VDA hyperparameters (paper Fig. 3)")
    return save_figure(fig, path)


def _draw_setting(ax: Any, rows: pd.DataFrame, base: pd.DataFrame, param: str) -> None:
    """One Figure 3 panel: Ori Acc and Att Acc per value of ``param``, the baseline as bands."""
    for column, label, color in (("clean_acc", "Ori Acc", "tab:blue"), ("attack_acc", "Att Acc", "tab:red")):
        points = pd.DataFrame({setting: _pooled(group, column) for setting, group
                               in rows.groupby(rows[param].astype(float))}, index=["value", "low", "high"]).T
        if len(points):
            ax.errorbar(points.index, points["value"], yerr=_error_bars(points["value"], points["low"], points["high"]),
                        fmt="o-", capsize=3, color=color, label=f"VDA {label}")
        if len(base):
            value, low, high = _pooled(base, column)
            ax.axhline(value, color=color, ls="--", lw=1, label=f"baseline {label}")
            ax.axhspan(low, high, color=color, alpha=0.08)
    if param == "config.vda.sigma" and len(rows) and rows[param].astype(float).min() > 0:
        ax.set_xscale("log")
    ax.set_xlabel(param[len("config."):])
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)


def headline_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The rows a plot draws: every attack key's, except the attacks of a union drawn as their union.

    One row per checkpoint and headline key: a union's where several attacks ran (its attacks'
    rows stay in the tables), else the attack's own. Two keys of one protocol (another threshold,
    code version) are both kept: plots draw them as separate series or panels.
    """
    if summary.empty or "attack" not in summary:
        return summary
    unions = summary[summary["attack"] == UNION]
    covered = set(zip(unions["checkpoint_hash"], unions["union_key"]))
    in_union = [attack != UNION and (checkpoint, key) in covered
                for attack, checkpoint, key in zip(summary["attack"], summary["checkpoint_hash"], summary["union_key"])]
    return summary[~np.array(in_union, dtype=bool)]


def plot_epochs(summary: pd.DataFrame, checkpoints: pd.DataFrame, path: Path) -> Path | None:
    """Figure 4: dev accuracy per epoch, attack accuracy per key where an epoch was attacked; None for one epoch."""
    import matplotlib.pyplot as plt

    if checkpoints.empty or checkpoints["epoch"].nunique() < 2:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    headline = headline_rows(summary)
    headline = headline.assign(key=key_labels(headline)) if len(headline) else headline.assign(key=[])
    keys = list(dict.fromkeys(headline["key"]))
    for run_id, rows in checkpoints.sort_values("epoch").groupby("run_id"):
        color = "tab:gray" if _baseline(rows).all() else "tab:green"
        kind = "baseline" if _baseline(rows).all() else "VDA"
        ax.plot(rows["epoch"], rows["metrics.dev_acc"], "o-", color=color, alpha=0.8, label=f"{kind} dev acc")
        for marker, key in zip("sD^vP*X", keys):
            attacked = headline[headline["key"] == key].set_index("checkpoint_hash")
            hit = rows[rows["checkpoint_hash"].isin(attacked.index)]
            if len(hit):
                acc = attacked.loc[hit["checkpoint_hash"]]
                ax.errorbar(hit["epoch"], acc["attack_acc"], fmt=f"{marker}--", capsize=3, color=color, alpha=0.8,
                            yerr=_error_bars(acc["attack_acc"], acc["attack_acc_low"], acc["attack_acc_high"]),
                            label=f"{kind} attack acc ({key})")
    handles = dict(zip(*reversed(ax.get_legend_handles_labels())))  # one legend entry per label
    ax.legend(handles.values(), handles.keys(), fontsize=7)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.set_title("Accuracy per training epoch, baseline vs VDA (paper Fig. 4)")
    return save_figure(fig, path)


def plot_pareto(ranked: pd.DataFrame, objectives: Sequence[str], path: Path) -> Path:
    """The trade-off of two objectives (the sweep's, else Ori Acc vs Att Acc), one panel per attack key,
    each key's Pareto-optimal points ringed.

    Accuracies measured by the attack carry their 95 % Wilson interval as error bars: a point off
    the front whose bars reach it is not shown to be worse.
    """
    import matplotlib.pyplot as plt

    pair = list(objectives) if len(objectives) == 2 else ["clean_acc", "attack_acc"]
    x, y = sorted(pair, key=lambda o: o == "attack_acc")  # robustness on the y axis when it is an objective
    frame = ranked.assign(key=key_labels(ranked)) if "key" not in ranked else ranked
    keys = list(dict.fromkeys(frame["key"])) or [""]
    fig, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 4.5), squeeze=False)
    for ax, key in zip(axes[0], keys):
        rows = frame[frame["key"] == key]
        front = rows[pareto_mask(rows, (x, y))].sort_values(COLUMNS[x])
        ax.errorbar(rows[COLUMNS[x]], rows[COLUMNS[y]], xerr=_interval_of(rows, x), yerr=_interval_of(rows, y),
                    fmt="none", ecolor="lightgray", zorder=0)
        ax.scatter(rows[COLUMNS[x]], rows[COLUMNS[y]], c=["tab:gray" if b else "tab:green" for b in _baseline(rows)])
        ax.plot(front[COLUMNS[x]], front[COLUMNS[y]], "k--o", lw=1, ms=12, mfc="none", label="Pareto front")
        for _, row in rows.iterrows():
            ax.annotate(str(row["run_id"])[-14:], (row[COLUMNS[x]], row[COLUMNS[y]]), fontsize=7, xytext=(4, 4),
                        textcoords="offset points")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(key, fontsize=8)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle("Accuracy vs robustness (gray: baseline, green: VDA)")
    return save_figure(fig, path)


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
    return save_figure(fig, path)


def save_figure(fig: Any, path: Path) -> Path:
    """Write ``fig`` to ``path`` (its folder made) and close it, so a long report run holds no figures open."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
