"""The sweep's table, plots and report page, from a results store alone.

    python -m analysis --store results/vda-default/store            # writes next to the store
    python -m analysis --store results/vda-default/store --objectives dev_acc attack_acc --out /tmp/report

Writes ``summary.csv`` and ``summary.md`` (the paper's columns, ``analysis.tables``; grouped by
attack key, the headline keys first (a union's, or a lone attack's), and within each key best
first: its Pareto-optimal rows starred, then by the first objective; ``analysis.plots.rank``),
``results.csv`` (every column), ``report.html`` (the table, the plots and every attacked example in
one page: ``analysis.report``) and ``plots/`` (``analysis.plots``). ``summary.md`` says which
settings varied. The sweep (``tune/sweep.py``) calls ``write_report`` when it ends.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from analysis.plots import (headline_rows, load_results, paper_table, param_importances, plot_epochs,
                            plot_hyperparameters, plot_importances, plot_pareto, rank, to_markdown, varied_settings)
from analysis.report import write_html
from analysis.tables import format_cells, key_labels
from tune.config import OBJECTIVES

log = logging.getLogger("analysis.summary")


def write_report(store: str | Path, out_dir: str | Path, objectives: Sequence[str], optuna_url: str | None = None,
                 title: str = "sweep") -> tuple[str, dict[str, Path]]:
    """Write the table (CSV, Markdown), plots and HTML report; return the Markdown table and the written files."""
    import matplotlib

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
    settings = [c[len("config."):] for c in varied_settings(summary)]
    varied = ("settings that varied: " + ", ".join(settings)) if settings else \
        "no VDA setting (sigma, k, lambda) varied: no Figure 3"
    markdown = to_markdown(format_cells(table)) + problems
    objective_text = " and ".join(objectives)
    header = (f"# {title}: by attack key, best first (Pareto-optimal on {objective_text} within the key "
              f"marked *)\n\n{varied}\n\n")
    footer = f"\n\nOptuna study: {optuna_url} (optuna-dashboard {optuna_url})\n" if optuna_url else "\n"
    files["summary_md"] = out_dir / "summary.md"
    files["summary_md"].write_text(header + markdown + footer)
    plots, headline = out_dir / "plots", headline_rows(summary)
    drawn = {"plot_hyperparameters": plot_hyperparameters(headline, plots / "accuracy_vs_hyperparameters.png"),
             "plot_epochs": plot_epochs(summary, checkpoints, plots / "accuracy_vs_epoch.png"),
             "plot_pareto": plot_pareto(rank(headline, objectives), objectives, plots / "pareto_front.png")}
    files.update({name: path for name, path in drawn.items() if path is not None})
    importances = {f"{objective} ({key})": scores
                   for key, rows in headline.groupby(key_labels(headline), sort=False)
                   for objective, scores in param_importances(rows, objectives).items()}
    if importances:
        files["plot_importances"] = plot_importances(importances, plots / "param_importances.png")
    else:
        log.info("no importance plot: it needs >= 3 attacked configurations of one key that differ in a "
                 "hyperparameter")
    files["report_html"] = write_html(store, out_dir, {k: v for k, v in files.items() if k.startswith("plot_")}, title)
    return markdown, files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__.split("\n\n")[0],
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
