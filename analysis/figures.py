"""The paper's Figures 3 and 4 as measurements: every point a mean over seeds with its interval and its Δ.

    python -m analysis.figures --store /tmp/mech/store --out docs/results/figures/mechanism-mr

Figure 4 (accuracy over training epochs) takes every run whose checkpoints were attacked at two
epochs or more (``sweep.attack.checkpoints: every_epoch`` or ``attack_workers evaluate`` over
``keep_epoch_checkpoints``): one point per method, configuration and epoch, Ori Acc and Att Acc
over its seeds and examples, and Δ Att Acc paired with the base method at the same epoch, seed
and examples. Does the gap grow with training?

Figure 3 (accuracy over sigma and k) takes the VDA rows whose configurations differ in
``vda.sigma`` or ``vda.k`` only, one checkpoint per seed (its best epoch), each paired with the
base method of the same seed. Beside them, the *seed noise*: the range of the base method's
per-seed Att Acc, which training seed alone moves. A curve whose points all lie inside it is not
told apart from plain fine-tuning by these seeds, and the plot says so in its title.

Unlike ``analysis.plots`` (one sweep's checkpoints, Wilson intervals per checkpoint), every interval
here is over seeds and examples (``attack_workers.results.uncertainty.mean_interval``), as the
paper-layout tables' are (``analysis.reproduce``), and each figure's numbers print as a table too.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.methods import one_checkpoint_per_seed
from analysis.plots import load_results, save_figure, to_markdown
from analysis.reproduce import attack_key_of, method_frame, paired_delta
from attack_workers.results.keys import UNION
from attack_workers.results.outcomes import clean_outcomes, robust_outcomes
from attack_workers.results.store import load_examples
from attack_workers.results.uncertainty import MeanInterval, format_interval, mean_interval, robust_matrix

CURVE = ["protocol label", "attacks", "row", "mode"]  # one line of a figure (with its configuration)
LINE = ["protocol", "Method", "mode", "configuration"]  # the same, as a figure's points name it
SIGMA_K = re.compile(r"\s*vda\.(?:sigma|k)=\S+")  # the settings Figure 3 varies, in a configuration string


def _headline(frame: pd.DataFrame) -> pd.DataFrame:
    """Each checkpoint's headline rows: the union's under a key with several attacks, else the one attack's."""
    has_union = frame.groupby(["checkpoint_hash", "union_key"])["attack"].transform(lambda a: (a == UNION).any())
    return frame[(frame["attack"] == UNION) | ~has_union]


def _accuracy(group: pd.DataFrame, examples: pd.DataFrame, outcome: Any) -> MeanInterval:
    """The group's mean outcome over its checkpoints (one per seed) and examples, with its interval."""
    matrix = robust_matrix(examples, list(group["checkpoint_hash"]), attack_key_of(group), outcome=outcome)
    return mean_interval(matrix.to_numpy(), bounds=(0.0, 1.0))


def _point(group: pd.DataFrame, bases: pd.DataFrame, examples: pd.DataFrame, on: tuple[str, ...]) -> dict[str, Any]:
    """One point of a figure: seeds, Ori Acc, Att Acc and Δ vs the base method (None for a base row)."""
    is_base = bool((group["row"] == group["base"]).all())
    return {"seeds": int(group["config.seed"].nunique()),
            "ori": _accuracy(group, examples, clean_outcomes),
            "att": _accuracy(group, examples, robust_outcomes),
            "delta": None if is_base else paired_delta(group, bases, examples, on=on)}


def epoch_points(summary: pd.DataFrame, examples: pd.DataFrame) -> pd.DataFrame:
    """Figure 4: one row per (protocol, method, configuration, epoch) of the runs attacked at >= 2 epochs.

    A seed trained twice counts once, its latest run (as ``one_checkpoint_per_seed`` does for the
    tables). Empty when no run was attacked at two epochs.
    """
    frame, examples = method_frame(summary, examples)
    frame = _headline(frame)
    frame = frame[frame.groupby(["union_key", "run_id"])["epoch"].transform("nunique") >= 2]
    run_created = frame.groupby("run_id")["created"].transform("max")  # each epoch's checkpoint has its own time
    latest = run_created.groupby([frame[c] for c in ["union_key", *CURVE, "configuration", "config.seed"]]
                                 ).transform("max")
    frame = frame[run_created == latest]
    bases = frame[frame["row"] == frame["base"]]
    records = [{"protocol": key[0], "attacks": key[1], "Method": key[2], "mode": key[3], "configuration": key[4],
                "epoch": int(key[5]), **_point(group, bases, examples, on=("epoch",))}
               for key, group in frame.groupby([*CURVE, "configuration", "epoch"], sort=True)]
    return pd.DataFrame(records)


def sigma_points(summary: pd.DataFrame, examples: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Figure 3: (one row per (protocol, method, other settings, sigma, k) of the VDA rows that vary sigma or k;
    the seed noise: the base method's per-seed Att Acc range per protocol and base configuration).

    A family of configurations that share everything but sigma and k (``rest``) is one figure; one
    with a single (sigma, k) is a table row, not a curve, and is left out.
    """
    frame, examples = method_frame(summary, examples)
    frame = one_checkpoint_per_seed(_headline(frame))
    frame = frame.assign(rest=[SIGMA_K.sub("", c).strip() for c in frame["configuration"]],
                         sigma=frame["config.vda.sigma"].astype(float), k=frame["config.vda.k"].astype(int))
    vda = frame[frame["config.vda.lam"].astype(float) > 0]
    settings = vda.groupby([*CURVE, "rest"])[["sigma", "k"]].transform(lambda s: s.nunique())
    vda = vda[(settings["sigma"] > 1) | (settings["k"] > 1)]
    bases = frame[frame["row"] == frame["base"]]
    records = [{"protocol": key[0], "attacks": key[1], "Method": key[2], "mode": key[3], "configuration": key[4],
                "sigma": key[5], "k": key[6], "base configuration": group["base_configuration"].iloc[0],
                **_point(group, bases, examples, on=())}
               for key, group in vda.groupby([*CURVE, "rest", "sigma", "k"], sort=True)]
    curves = set(zip(vda["protocol label"], vda["base_configuration"]))
    noise = [_seed_noise(group, examples) | {"protocol": key[0], "base configuration": key[1]}
             for key, group in bases.groupby(["protocol label", "base_configuration"]) if key in curves]
    return pd.DataFrame(records), pd.DataFrame(noise)


def _seed_noise(bases: pd.DataFrame, examples: pd.DataFrame) -> dict[str, Any]:
    """The base method's Att Acc per seed (on the examples every seed has): its mean, lowest and highest."""
    matrix = robust_matrix(examples, list(bases["checkpoint_hash"]), attack_key_of(bases))
    per_seed = matrix.dropna(axis=1).mean(axis=1)
    return {"Method": bases["row"].iloc[0], "seeds": len(per_seed), "mean": float(per_seed.mean()),
            "low": float(per_seed.min()), "high": float(per_seed.max())}


def inside_noise(points: pd.DataFrame, noise: pd.DataFrame) -> str:
    """What Figure 3 shows against the seed noise, in words: the plot's title and the table's caption."""
    if points.empty or noise.empty:
        return "no curve"
    ranges = noise.set_index(["protocol", "base configuration"])[["low", "high"]]
    spans = [ranges.loc[key] for key in zip(points["protocol"], points["base configuration"])]  # a point's own base
    inside = sum(span["low"] <= p.value <= span["high"] for p, span in zip(points["att"], spans))
    deltas = [d for d in points["delta"] if isinstance(d, MeanInterval)]
    cover = sum(d.low <= 0 <= d.high for d in deltas)
    verdict = ("every point lies inside the seed noise" if inside == len(points)
               else f"{len(points) - inside} of {len(points)} points lie outside the seed noise")
    seeds = ", ".join(f"{low:.3f}-{high:.3f}" for low, high in ranges.itertuples(index=False))
    return f"{verdict} (plain's seeds {seeds}); {cover} of {len(deltas)} Δ intervals include 0"


def points_table(points: pd.DataFrame, axis: list[str]) -> pd.DataFrame:
    """A figure's points as the cells the pages print: '0.562 [0.505, 0.617]'."""
    if points.empty:
        return points
    table = points[["protocol", "Method", "mode", "configuration", *axis, "seeds"]].copy()
    table["Ori Acc"] = [format_interval(p) for p in points["ori"]]
    table["Att Acc"] = [format_interval(p) for p in points["att"]]
    table["Δ Att Acc"] = [format_interval(d, signed=True) if isinstance(d, MeanInterval) else d if isinstance(d, str)
                          else "" for d in points["delta"]]  # a base row's None may come back as NaN
    if not table["configuration"].any():
        table = table.drop(columns="configuration")
    return table


def _line_labels(points: pd.DataFrame, keys: list[str]) -> dict[tuple[Any, ...], str]:
    """Each line's legend label: its method and mode, then the settings that tell it apart from lines of the
    same label (configurations print every varied setting, too long for a legend), then the protocol."""
    lines = points.drop_duplicates(keys).set_index(keys, drop=False)
    labels = {key: row["Method"] + (f" ({row['mode']})" if row["mode"] != "-" else "") for key, row in lines.iterrows()}
    for label in set(labels.values()):
        same = [key for key in labels if labels[key] == label]
        settings = {key: set(str(lines.loc[key, "configuration"]).split()) for key in same}
        common = set.intersection(*settings.values())
        labels.update({key: " ".join([label, *sorted(settings[key] - common)]) for key in same})
    if points["protocol"].nunique() > 1:
        labels = {key: f"{label}, {lines.loc[key, 'protocol']}" for key, label in labels.items()}
    return labels


def _draw(ax: Any, points: pd.DataFrame, x: str, column: str, label: str, color: str) -> None:
    """One line with its 95 % intervals as error bars (points without a value, a base's Δ, are left out)."""
    cells = [(position, p) for position, p in zip(points[x], points[column]) if isinstance(p, MeanInterval)]
    if not cells:
        return
    xs, values = [c[0] for c in cells], np.array([c[1].value for c in cells])
    errors = np.array([[p.value - p.low, p.high - p.value] for _, p in cells]).T
    ax.errorbar(xs, values, yerr=np.nan_to_num(errors), fmt="o-", capsize=3, alpha=0.85, label=label,
                color=color)


def plot_epochs(points: pd.DataFrame, path: Path) -> Path | None:
    """Figure 4: Ori Acc, Att Acc and Δ Att Acc vs the base per epoch, one line per method and configuration;
    None without points."""
    import matplotlib.pyplot as plt

    if points.empty:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharex=True)
    labels = _line_labels(points, LINE)
    for number, (key, line) in enumerate(points.groupby(LINE, sort=False)):
        for ax, column in zip(axes, ("ori", "att", "delta")):  # a line keeps its colour in every panel
            _draw(ax, line.sort_values("epoch"), "epoch", column, labels[key], f"C{number % 10}")
    axes[2].axhline(0.0, color="tab:gray", linewidth=1)
    for ax, title in zip(axes, ("Ori Acc", "Att Acc", "Δ Att Acc vs the base, paired per epoch")):
        ax.set_xlabel("epoch")
        ax.set_xticks(sorted(points["epoch"].unique()))
        ax.set_title(f"{title} (95 % CI)", fontsize=9)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.suptitle("Accuracy per training epoch (paper Fig. 4); intervals over seeds and examples", fontsize=10)
    return save_figure(fig, path)


def plot_sigma(points: pd.DataFrame, noise: pd.DataFrame, path: Path) -> Path | None:
    """Figure 3: Ori Acc and Att Acc over sigma, one line per k, the base method's seed range shaded."""
    import matplotlib.pyplot as plt

    if points.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    labels = _line_labels(points, LINE)
    for number, ((*key, k), line) in enumerate(points.groupby([*LINE, "k"], sort=True)):
        for ax, column in zip(axes, ("ori", "att")):
            _draw(ax, line.sort_values("sigma"), "sigma", column, f"{labels[tuple(key)]} k={k}", f"C{number % 10}")
    for _, base in noise.iterrows():
        axes[1].axhspan(base["low"], base["high"], color="tab:gray", alpha=0.2,
                        label=f"{base['Method']}: range of {base['seeds']} seeds")
        axes[1].axhline(base["mean"], color="tab:gray", linestyle="--", linewidth=1)
    for ax, title in zip(axes, ("Ori Acc", "Att Acc")):
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(sorted(points["sigma"].unique()), [f"{v:g}" for v in sorted(points["sigma"].unique())])
        ax.set_xlabel("sigma")
        ax.set_title(f"{title} (95 % CI over seeds and examples)", fontsize=9)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.suptitle(f"Accuracy over sigma and k (paper Fig. 3): {inside_noise(points, noise)}", fontsize=9)
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.figures", description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, help="a study's store/ directory")
    parser.add_argument("--out", type=Path, help="where to write figure3.png and figure4.png (default: print only)")
    args = parser.parse_args(argv)
    summary, _, _ = load_results(args.store)
    examples = load_examples(args.store)
    epochs = epoch_points(summary, examples)
    sigmas, noise = sigma_points(summary, examples)
    print("Figure 4: accuracy per epoch\n")
    print(to_markdown(points_table(epochs, ["epoch"])) if len(epochs) else "(no run attacked at two epochs)")
    print("\nFigure 3: accuracy over sigma and k\n")
    if len(sigmas):
        print(to_markdown(points_table(sigmas, ["sigma", "k"])))
        print(f"\nSeed noise: {inside_noise(sigmas, noise)}")
    else:
        print("(no VDA configurations that differ in sigma or k only)")
    if args.out:
        for written in (plot_epochs(epochs, args.out / "figure4.png"), plot_sigma(sigmas, noise, args.out / "figure3.png")):
            if written:
                print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
