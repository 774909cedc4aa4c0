"""The paper's Tables 2-3 from a results store: mean and std over seeds, the paper's numbers beside.

    python tune/sweep.py --config paper_table2_mr                       # trains and attacks the rows
    python -m tune.reproduce --store results/paper-table2-mr/store --dataset mr

A row is one (strategy, with/without VDA, substitution mode) over every seed in the store; the
columns are the paper's (Ori Acc, Att Acc, Q Num, Perturb) as "mean ± std (n seeds)", followed by
the published BERT-base numbers of that row when the dataset is one of the paper's.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from tune.analysis import load_results, to_markdown

METRICS = {"Ori Acc": "clean_acc", "Att Acc": "attack_acc", "Q Num": "avg_queries", "Perturb": "perturbed_pct"}
STRATEGY_NAMES = {"plain": "BERT", "freelb": "FreeLB", "smart": "SMART", "smix": "SMix"}

# Paper Tables 2-3, BERT-base rows: (Ori Acc, Att Acc, Q Num, Perturb %) per dataset and row.
PAPER = {
    "mr": {"BERT": (0.868, 0.210, 58.217, 20.291), "BERT+VDA": (0.878, 0.339, 70.519, 22.775),
           "FreeLB": (0.879, 0.240, 60.498, 20.266), "FreeLB+VDA": (0.883, 0.302, 69.109, 21.557),
           "SMART": (0.880, 0.226, 56.067, 20.514), "SMART+VDA": (0.885, 0.298, 63.965, 23.386),
           "SMix": (0.880, 0.251, 61.289, 21.842), "SMix+VDA": (0.883, 0.319, 68.893, 20.874)},
    "ag_news": {"BERT": (0.944, 0.327, 223.271, 22.309), "BERT+VDA": (0.946, 0.450, 268.981, 21.757),
                "FreeLB": (0.945, 0.301, 215.178, 21.175), "FreeLB+VDA": (0.945, 0.473, 271.282, 22.634),
                "SMART": (0.944, 0.403, 251.643, 21.953), "SMART+VDA": (0.945, 0.484, 273.724, 23.572),
                "SMix": (0.944, 0.425, 269.616, 21.981), "SMix+VDA": (0.947, 0.513, 278.833, 24.422)},
    "glue-mrpc": {"BERT": (0.826, 0.163, 77.276, 9.601), "BERT+VDA": (0.831, 0.206, 90.686, 10.617),
                  "FreeLB": (0.827, 0.154, 82.372, 10.193), "FreeLB+VDA": (0.838, 0.205, 87.379, 10.566),
                  "SMART": (0.831, 0.139, 81.114, 10.270), "SMART+VDA": (0.832, 0.179, 85.628, 11.546),
                  "SMix": (0.824, 0.249, 116.660, 11.224), "SMix+VDA": (0.833, 0.258, 97.380, 11.448)},
    "glue-qnli": {"BERT": (0.909, 0.342, 93.515, 13.451), "BERT+VDA": (0.913, 0.410, 112.088, 14.816),
                  "FreeLB": (0.910, 0.363, 98.703, 14.283), "FreeLB+VDA": (0.915, 0.428, 111.812, 15.953),
                  "SMART": (0.909, 0.309, 91.435, 14.654), "SMART+VDA": (0.911, 0.388, 105.918, 14.611),
                  "SMix": (0.886, 0.171, 71.849, 10.171), "SMix+VDA": (0.915, 0.389, 109.562, 14.537)},
}


def row_name(strategy: str, lam: float) -> str:
    """The paper's row label: 'FreeLB', 'FreeLB+VDA', ..."""
    base = STRATEGY_NAMES.get(strategy, strategy)
    return f"{base}+VDA" if lam > 0 else base


def reproduction_table(summary: pd.DataFrame, dataset: str | None = None) -> pd.DataFrame:
    """Group attacked checkpoints by (row, mode) over seeds; add the paper's numbers when known."""
    if summary.empty:
        raise ValueError("the store has no attacked checkpoints; run the sweep (and its attacks) first")
    frame = summary.copy()
    frame["row"] = [row_name(s, float(lam)) for s, lam in
                    zip(frame.get("config.strategy.name", pd.Series("plain", index=frame.index)),
                        frame["config.vda.lam"])]
    frame["mode"] = frame["config.vda.mode"].where(frame["config.vda.lam"].astype(float) > 0, "-")
    paper = PAPER.get(dataset or "", {})
    records = []
    for (row, mode), group in frame.groupby(["row", "mode"], sort=False):
        record = {"Method": row, "mode": mode, "seeds": int(group["config.seed"].nunique())}
        for label, column in METRICS.items():
            values = group[column].astype(float)
            record[label] = f"{values.mean():.3f} ± {values.std(ddof=0):.3f}"
        if row in paper:
            record.update({f"paper {label}": value for label, value in zip(METRICS, paper[row])})
        records.append(record)
    order = list(STRATEGY_NAMES.values())
    table = pd.DataFrame(records)
    table["_order"] = [order.index(m.split("+")[0]) if m.split("+")[0] in order else len(order)
                       for m in table["Method"]]
    return table.sort_values(["_order", "Method", "mode"]).drop(columns="_order").reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tune.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, help="a sweep's store/ directory")
    parser.add_argument("--dataset", default=None, help=f"paper dataset for the published columns: {', '.join(PAPER)}")
    args = parser.parse_args(argv)
    summary, _, _ = load_results(args.store)
    print(to_markdown(reproduction_table(summary, args.dataset)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
