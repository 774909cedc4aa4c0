"""The paper's tables from a results store: means over seeds with 95 % intervals, the paper's numbers beside.

    python tune/sweep.py --config paper_table2_mr                       # trains and attacks the rows
    python -m tune.reproduce --store results/paper-table2-mr/store      # Tables 2-3 layout
    python -m tune.reproduce --store results/paper-table4/store --table ablation --dataset ag_news

A row is one method (strategy or RoBERTa, with or without VDA, an ablation of VDA, with or
without ADA) and substitution mode, over every seed in the store. Its label is derived from the
recorded training config, not from the sweep's variant names, so any store can be laid out this
way. The columns are the paper's (Ori Acc, Q Num, Perturb as "mean ± SD" over seeds, the sample SD;
Att Acc and its paired difference to the base method as "0.210 [0.185, 0.237]", a 95 % interval
over seeds and examples, labelled in the cell where it covers the examples only), "Flagged" when
the validity audit has run, then the published numbers of that row when the dataset is one of the
paper's: ``--table main`` (Tables 2-3), ``ablation`` (Table 4) or ``ada`` (Table 5). A seed is one
checkpoint: a run's best epoch, the latest run where a seed was trained twice
(``one_checkpoint_per_seed``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from attack_workers.results.store import load_examples
from attack_workers.results.uncertainty import format_interval, format_number, mean_interval, paired_differences, robust_matrix
from attack_workers.attack.recipes import attack_rank
from attack_workers.results.union import UNION, with_union
from tune.analysis import load_results, to_markdown

log = logging.getLogger("tune.reproduce")

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


def _attack_key(group: pd.DataFrame) -> str | None:
    """The group's attack key if it has one; None if several (a checkpoint attacked under two is then an error)."""
    keys = group["attack_key"].unique()
    return str(keys[0]) if len(keys) == 1 else None


def one_checkpoint_per_seed(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` (a summary with ``row`` and ``mode``) that stand for a seed: one per
    (attack key, row, mode, seed).

    An epoch is not a seed: with every epoch attacked (``sweep.attack.checkpoints: every_epoch``) a
    run has one checkpoint per epoch, and the one it stands for is the one it selected, its best
    epoch by its selection metric (the earliest of equal ones: ``vda.train`` marks only strict
    improvements best). A seed trained twice (a resumed grid retrains a row under new trial ids) is
    one seed: the latest-created run's checkpoint stands for it, the others are set aside with a
    warning. Counting either as more seeds would narrow the intervals and cross-pair the Δ.
    """
    best = frame.assign(_score=_selection_score(frame)).sort_values(
        ["_score", "epoch", "checkpoint_hash"], ascending=[False, True, True], na_position="last", kind="stable")
    per_run = best.drop_duplicates(["attack_key", "run_id"])
    latest = per_run.sort_values(["created", "checkpoint_hash"], ascending=[False, True], kind="stable")
    chosen = latest.drop_duplicates(["attack_key", "row", "mode", "config.seed"])
    if len(chosen) < len(per_run):
        log.warning("%d run(s) repeat a seed already in their row; each seed counts once, its latest run: "
                    "set aside %s", len(per_run) - len(chosen),
                    ", ".join(sorted(set(per_run["run_id"]) - set(chosen["run_id"]))))
    return frame[frame.index.isin(chosen.index)]


def _selection_score(frame: pd.DataFrame) -> pd.Series:
    """Each checkpoint's value of its run's selection metric, higher better (a loss negated); NaN if unknown."""
    metrics = frame.get("config.selection_metric", pd.Series("dev_acc", index=frame.index)).fillna("dev_acc")
    values = [frame.at[i, f"metrics.{m}"] if f"metrics.{m}" in frame else float("nan") for i, m in metrics.items()]
    signs = [-1.0 if str(m).endswith("loss") else 1.0 for m in metrics]
    return pd.Series(values, index=frame.index, dtype=float) * signs


def _attack_accuracy(group: pd.DataFrame, examples: pd.DataFrame) -> str:
    """Att Acc over the group's checkpoints (one per seed) with its interval over seeds and examples."""
    matrix = robust_matrix(examples, list(group["checkpoint_hash"]), _attack_key(group))
    return format_interval(mean_interval(matrix.to_numpy(), bounds=(0.0, 1.0)))


def _paired_delta(group: pd.DataFrame, bases: pd.DataFrame, examples: pd.DataFrame) -> str:
    """Att Acc - the base method's, paired by seed and example id, with its CI; '' for base rows.

    Both sides hold one checkpoint per seed (``one_checkpoint_per_seed``). Seeds the base lacks
    drop out of the Δ, and the cell says so ("2 of 3 seeds paired"): the row's Att Acc and seeds
    column count all of its seeds.
    """
    if (group["row"] == group["base"]).all():
        return ""
    keys = ["base", "config.seed", "attack_key"]
    pairs = group[[*keys, "checkpoint_hash"]].merge(bases[[*keys, "checkpoint_hash"]], on=keys,
                                                    suffixes=("", "_base"))
    if pairs.empty:
        return "no base"
    differences = paired_differences(examples, list(zip(pairs["checkpoint_hash"], pairs["checkpoint_hash_base"])),
                                     _attack_key(group))
    return format_interval(mean_interval(differences), signed=True, seeds_of=group["config.seed"].nunique())


def _protocol_label(group: pd.DataFrame) -> str:
    """'vda-paper', with the word threshold when the attack used one (rows of two thresholds differ)."""
    protocol = str(group["protocol"].iloc[0])
    threshold = group.get("attack.word_similarity_threshold")
    if protocol == "vda-paper" and threshold is not None and threshold.notna().all():
        return f"{protocol} (word cos >= {float(threshold.iloc[0]):g})"
    return protocol


def _mean_std(values: pd.Series) -> str:
    """'0.820 ± 0.028': mean and sample SD (ddof 1) over the seeds of a row; '0.830' for one seed.

    The sample SD, because 2-3 seeds are a sample of the seeds one could train: the population
    formula (ddof 0) reads sqrt((S-1)/S) of it, 0.71 at two seeds.
    """
    values = values.astype(float)
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}" if len(values) > 1 else f"{values.mean():.3f}"


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


def reproduction_table(summary: pd.DataFrame, examples: pd.DataFrame, dataset: str | None = None,
                       table: str = "main") -> pd.DataFrame:
    """Group attacked checkpoints by (row, mode) over seeds; add the paper's numbers when known.

    ``summary`` is the store's summary, ``examples`` its per-example rows (what the intervals are
    computed from). A row's seeds are one checkpoint each (``one_checkpoint_per_seed``). "Att Acc"
    is the mean over the row's seeds on the example ids all of them were attacked on, with a 95 %
    interval over seeds and example ids (``attack_workers.results.uncertainty.mean_interval``) rather
    than Wilson on pooled counts: Wilson sees only the example sample, but a method's Att Acc also
    moves with its training seed, and an interval for the method (not for one checkpoint) has to
    include that. Under three seeds it cannot, and the cell says so ("2 seeds: example-level only,
    no seed variance"). "Δ Att Acc" is the row's attack accuracy minus that of its base method (the
    same strategy, without VDA or ADA) trained with the same seed, on the same example ids, with the
    same interval: the paired difference, which the variation the two rows share does not blur. An
    interval that excludes 0 is a difference these seeds and examples support. Ori Acc, Q Num and
    Perturb are the mean ± sample SD over the seeds. "Flagged" (the mean over seeds of the share of
    successful attacks the validity audit flags) appears when the summary has ``flagged_share``.
    """
    if summary.empty:
        raise ValueError("the store has no attacked checkpoints; run the sweep (and its attacks) first")
    if table not in PAPER_TABLES:
        raise ValueError(f"unknown paper table {table!r}; use one of {', '.join(PAPER_TABLES)}")
    frame = summary.copy()
    if "attack" not in frame:  # a summary of a store written before attacks had names
        frame["attack"] = "bert-attack"
    if "union_key" not in frame:
        frame["union_key"] = frame["attack_key"]
    if "attack" not in examples or not (examples["attack"] == UNION).any():
        examples = with_union(examples)
    configs = frame[[c for c in frame.columns if c.startswith("config.")]].rename(columns=lambda c: c[len("config."):])
    frame["row"] = [row_name(config) for config in configs.to_dict("records")]
    frame["mode"] = frame["config.vda.mode"].where(frame["config.vda.lam"].astype(float) > 0, "-")
    paper = paper_numbers(table, paper_dataset(frame, dataset) or "")
    frame["base"] = [row.split("+")[0] for row in frame["row"]]
    frame = one_checkpoint_per_seed(frame)
    bases = frame[frame["row"] == frame["base"]]
    records = []
    # One union key = one protocol with one set of parameters on one example set: rows of two keys
    # (the legacy protocol, another threshold) are different measurements and never pooled. Within
    # it, several attacks give one column group each, and the headline columns are the union's.
    for (key, row, mode), family in frame.groupby(["union_key", "row", "mode"], sort=False):
        attacks = sorted(set(family["attack"]) - {UNION}, key=lambda a: (attack_rank(a), a))
        group = family[family["attack"] == UNION] if (family["attack"] == UNION).any() else family
        record = {"protocol": _protocol_label(group), "Method": row, "mode": mode,
                  "seeds": int(group["config.seed"].nunique()),
                  "examples": _span(group["num_examples"]) if "num_examples" in group else "?"}
        for label, column in METRICS.items():
            record[label] = _attack_accuracy(group, examples) if column == "attack_acc" else _mean_std(group[column])
        record["Δ Att Acc"] = _paired_delta(group, bases, examples)
        record["attacks"] = ",".join(attacks) if len(attacks) > 1 else attacks[0]
        if len(attacks) > 1:  # one column group per attack; the headline Att Acc and Δ are the union's
            for attack in attacks:
                part = family[family["attack"] == attack]
                record[f"{attack} Att Acc"] = _attack_accuracy(part, examples)
                record[f"{attack} Δ"] = _paired_delta(part, bases, examples)
        if "flagged_share" in group:
            record["Flagged"] = format_number(group["flagged_share"].astype(float).mean())
        if row in paper:
            record.update({f"paper {label}": value for label, value in zip(METRICS, paper[row])})
        records.append(record)
    result = pd.DataFrame(records).fillna("")  # a protocol with one attack has no per-attack column group
    base = [m.split("+")[0] for m in result["Method"]]
    result["_order"] = [ROW_ORDER.index(b) if b in ROW_ORDER else len(ROW_ORDER) for b in base]
    result["_plus"] = [m.count("+") for m in result["Method"]]
    return (result.sort_values(["protocol", "_order", "_plus", "Method", "mode"])
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
    print(to_markdown(reproduction_table(summary, load_examples(args.store), args.dataset, args.table)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
