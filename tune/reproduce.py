"""The paper's tables from a results store: mean and std over seeds, the paper's numbers beside.

    python tune/sweep.py --config paper_table2_mr                       # trains and attacks the rows
    python -m tune.reproduce --store results/paper-table2-mr/store      # Tables 2-3 layout
    python -m tune.reproduce --store results/paper-table4/store --table ablation --dataset ag_news

A row is one method (strategy or RoBERTa, with or without VDA, an ablation of VDA, with or
without ADA) and substitution mode, over every seed in the store. Its label is derived from the
recorded training config, not from the sweep's variant names, so any store can be laid out this
way. The columns are the paper's (Ori Acc, Att Acc, Q Num, Perturb) as "mean ± std", followed by
the published numbers of that row when the dataset is one of the paper's: ``--table main``
(Tables 2-3), ``ablation`` (Table 4) or ``ada`` (Table 5).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from tune.analysis import load_results, to_markdown

METRICS = {"Ori Acc": "clean_acc", "Att Acc": "attack_acc", "Q Num": "avg_queries", "Perturb": "perturbed_pct"}
STRATEGY_NAMES = {"plain": "BERT", "freelb": "FreeLB", "smart": "SMART", "smix": "SMix"}
ROW_ORDER = ("BERT", "FreeLB", "SMART", "SMix", "RoBERTa")
# data.dataset as a run records it -> the paper's name for that dataset
PAPER_DATASETS = {"mr": "mr", "hf:rotten_tomatoes": "mr", "hf:ag_news": "ag_news", "hf:imdb": "imdb",
                  "hf:yelp_polarity": "yelp", "hf:glue/mrpc": "mrpc", "hf:glue/qnli": "qnli"}

PAPER_RESULTS = Path(__file__).with_name("paper_results.csv")  # the published numbers, one row per table row
PAPER_TABLES = ("main", "ablation", "ada")  # Tables 2-3, Table 4, Table 5


def paper_numbers(table: str, dataset: str) -> dict[str, tuple[float, ...]]:
    """The published (Ori Acc, Att Acc, Q Num, Perturb) of each row of ``table`` on ``dataset``."""
    published = pd.read_csv(PAPER_RESULTS, comment="#")
    rows = published[(published["table"] == table) & (published["dataset"] == dataset)]
    return {r.method: (r.ori_acc, r.att_acc, r.q_num, r.perturb) for r in rows.itertuples()}


def row_name(config: Mapping[str, Any]) -> str:
    """The paper's label of one run from its recorded config (``config.*`` columns, prefix stripped).

    'BERT', 'FreeLB+VDA', 'RoBERTa+VDA', 'BERT+VDA-eps', 'BERT+CE-VDA', 'BERT+Argmax', 'BERT+VDA+ADA'...
    """
    strategy = str(_value(config, "strategy.name", "plain"))
    if strategy == "plain" and "roberta" in str(_value(config, "model", "")).lower():
        parts = ["RoBERTa"]
    else:
        parts = [STRATEGY_NAMES.get(strategy, strategy)]
    if float(config["vda.lam"]) > 0:
        augment = str(_value(config, "vda.augment", "mixture"))
        vda = augment.capitalize() if augment != "mixture" else (
            "CE-VDA" if _value(config, "vda.loss", "symkl") == "ce" else "VDA")
        parts.append(vda if str(_value(config, "vda.noise", True)).lower() != "false" else f"{vda}-eps")
    if _value(config, "data.extra_train_file", ""):
        parts.append("ADA")
    return "+".join(parts)


def _value(config: Mapping[str, Any], key: str, default: Any) -> Any:
    """``config[key]``, or ``default`` where the store has no such column or no value (NaN) for this run."""
    value = config.get(key, default)
    return default if value is None or (isinstance(value, float) and value != value) else value


def _paired_delta(group: pd.DataFrame, base_attack: pd.Series) -> str:
    """Mean ± std over seeds of (attack accuracy - the base method's with the same seed); '' for base rows."""
    if (group["row"] == group["base"]).all():
        return ""
    keys = list(zip(group["base"], group["config.seed"]))
    deltas = [a - base_attack[key] for a, key in zip(group["attack_acc"].astype(float), keys) if key in base_attack]
    return f"{pd.Series(deltas).mean():+.3f} ± {pd.Series(deltas).std(ddof=0):.3f}" if deltas else "no base"


def _span(counts: pd.Series) -> str:
    """Attacked examples per checkpoint: '200', or '180-200' while some attacks are still running."""
    low, high = int(counts.min()), int(counts.max())
    return str(low) if low == high else f"{low}-{high}"


def paper_dataset(summary: pd.DataFrame, dataset: str | None) -> str | None:
    """The paper's name of the dataset: ``dataset`` if given, else the one ``data.dataset`` in the store."""
    if dataset:
        return PAPER_DATASETS.get(dataset, dataset)
    recorded = summary.get("config.data.dataset", pd.Series(dtype=str)).dropna().unique()
    return PAPER_DATASETS.get(str(recorded[0])) if len(recorded) == 1 else None


def reproduction_table(summary: pd.DataFrame, dataset: str | None = None, table: str = "main") -> pd.DataFrame:
    """Group attacked checkpoints by (row, mode) over seeds; add the paper's numbers when known.

    "Δ Att Acc" is the row's attack accuracy minus that of its base method (the same strategy,
    without VDA or ADA) trained with the same seed, as mean ± std over the seeds both have: the
    paired difference, which seed-to-seed variation of the two rows does not blur.
    """
    if summary.empty:
        raise ValueError("the store has no attacked checkpoints; run the sweep (and its attacks) first")
    if table not in PAPER_TABLES:
        raise ValueError(f"unknown paper table {table!r}; use one of {', '.join(PAPER_TABLES)}")
    frame = summary.copy()
    configs = frame[[c for c in frame.columns if c.startswith("config.")]].rename(columns=lambda c: c[len("config."):])
    frame["row"] = [row_name(config) for config in configs.to_dict("records")]
    frame["mode"] = frame["config.vda.mode"].where(frame["config.vda.lam"].astype(float) > 0, "-")
    paper = paper_numbers(table, paper_dataset(frame, dataset) or "")
    frame["base"] = [row.split("+")[0] for row in frame["row"]]
    base_attack = frame[frame["row"] == frame["base"]].groupby(["base", "config.seed"])["attack_acc"].mean()
    records = []
    for (row, mode), group in frame.groupby(["row", "mode"], sort=False):
        record = {"Method": row, "mode": mode, "seeds": int(group["config.seed"].nunique()),
                  "examples": _span(group["num_examples"]) if "num_examples" in group else "?"}
        for label, column in METRICS.items():
            values = group[column].astype(float)
            record[label] = f"{values.mean():.3f} ± {values.std(ddof=0):.3f}"
        record["Δ Att Acc"] = _paired_delta(group, base_attack)
        if row in paper:
            record.update({f"paper {label}": value for label, value in zip(METRICS, paper[row])})
        records.append(record)
    result = pd.DataFrame(records)
    base = [m.split("+")[0] for m in result["Method"]]
    result["_order"] = [ROW_ORDER.index(b) if b in ROW_ORDER else len(ROW_ORDER) for b in base]
    result["_plus"] = [m.count("+") for m in result["Method"]]
    return (result.sort_values(["_order", "_plus", "Method", "mode"])
            .drop(columns=["_order", "_plus"]).reset_index(drop=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tune.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, help="a sweep's store/ directory")
    parser.add_argument("--table", default="main", choices=PAPER_TABLES,
                        help="which published numbers to put beside: main (Tables 2-3), ablation (4), ada (5)")
    parser.add_argument("--dataset", default=None,
                        help="the paper's dataset for the published columns (default: the store's data.dataset): "
                             f"{', '.join(sorted(set(PAPER_DATASETS.values())))}")
    args = parser.parse_args(argv)
    summary, _, _ = load_results(args.store)
    print(to_markdown(reproduction_table(summary, args.dataset, args.table)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
