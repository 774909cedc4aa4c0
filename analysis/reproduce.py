"""The paper's tables from a results store: means over seeds with 95 % intervals, the paper's numbers beside.

    python tune/sweep.py --config paper_table2_mr                       # trains and attacks the rows
    python -m analysis.reproduce --store results/paper-table2-mr/store      # Tables 2-3 layout
    python -m analysis.reproduce --store results/paper-table4/store --table ablation --dataset ag_news

A row is one method (strategy or RoBERTa, with or without VDA, an ablation of VDA, with or
without ADA), substitution mode and configuration (the other settings that differ between the
store's runs: lambda, sigma, lr...), under one attack key (protocol, labelled by what tells two of
its keys apart, and set of attacks), over every seed in the store. Its label is derived from the
recorded training config, not from the sweep's variant names, so any store can be laid out this
way; no configuration is dropped to make the table. The columns are the paper's (Ori Acc, Q Num,
Perturb as "mean ± SD" over seeds, the sample SD; Att Acc and its paired difference to the base
method as "0.210 [0.185, 0.237]", a 95 % interval over seeds and examples, labelled in the cell
where it covers the examples only), "Flagged" when
the validity audit has run, then the published numbers of that row when the dataset is one of the
paper's: ``--table main`` (Tables 2-3), ``ablation`` (Table 4) or ``ada`` (Table 5). A seed is one
checkpoint: a run's best epoch, the latest run where a seed was trained twice
(``one_checkpoint_per_seed``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from analysis.methods import configurations, one_checkpoint_per_seed, row_name
from analysis.plots import load_results, to_markdown
from analysis.tables import count_cell, protocol_labels
from analysis.verdicts import join_verdicts, read_verdicts, reader_table
from attack_workers.results.keys import UNION, attack_rank
from attack_workers.results.outcomes import spared_note
from attack_workers.results.store import load_examples
from attack_workers.results.uncertainty import (MeanInterval, format_interval, format_number, mean_interval,
                                                paired_differences, robust_matrix)
from attack_workers.results.union import with_union

METRICS = {"Ori Acc": "clean_acc", "Att Acc": "attack_acc", "Q Num": "avg_queries", "Perturb": "perturbed_pct"}
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


def attack_key_of(group: pd.DataFrame) -> str | None:
    """The group's attack key if it has one; None if several (a checkpoint attacked under two is then an error)."""
    keys = group["attack_key"].unique()
    return str(keys[0]) if len(keys) == 1 else None


def _attack_accuracy(group: pd.DataFrame, examples: pd.DataFrame) -> str:
    """Att Acc over the group's checkpoints (one per seed) with its interval over seeds and examples.

    ``--union-only`` per-attack rows leave their spared examples out (``results.outcomes``, as the
    summary does), and the cell says so.
    """
    matrix = robust_matrix(examples, list(group["checkpoint_hash"]), attack_key_of(group))
    cell = format_interval(mean_interval(matrix.to_numpy(), bounds=(0.0, 1.0)))
    spared = int(pd.to_numeric(group.get("num_spared", pd.Series(0)), errors="coerce").fillna(0).sum())
    return f"{cell} {spared_note(spared)}" if spared else cell


def _paired_delta(group: pd.DataFrame, bases: pd.DataFrame, examples: pd.DataFrame) -> str:
    """Att Acc - the base method's, paired by seed and example id, with its CI; '' for base rows.

    Both sides hold one checkpoint per seed (``one_checkpoint_per_seed``) and share the attack key (a
    union's names its attack set: a union of other attacks is no base) and the settings besides
    VDA's (``base_configuration``: lr...). Seeds the base lacks, and pairs with a side that has no
    finished example yet (a partial union), drop out of the Δ, and the cell says so ("2 of 3 seeds
    paired"): the row's Att Acc and seeds column count all of its seeds.
    """
    if (group["row"] == group["base"]).all():
        return ""
    delta = paired_delta(group, bases, examples)
    if isinstance(delta, str):
        return delta
    return format_interval(delta, signed=True, seeds_of=group["config.seed"].nunique())


def paired_delta(group: pd.DataFrame, bases: pd.DataFrame, examples: pd.DataFrame,
                 on: Sequence[str] = ()) -> MeanInterval | str:
    """The group's Att Acc - its base checkpoints', paired by seed, example and the columns ``on`` (the
    epoch, for a curve over epochs), as a ``MeanInterval``; 'no base' or 'pending' where nothing pairs."""
    keys = ["base", "config.seed", "attack_key", "base_configuration", *on]
    pairs = group[[*keys, "checkpoint_hash", "num_examples"]].merge(
        bases[[*keys, "checkpoint_hash", "num_examples"]], on=keys, suffixes=("", "_base"))
    if pairs.empty:
        return "no base"
    pairs = pairs[(pairs["num_examples"] > 0) & (pairs["num_examples_base"] > 0)]
    if pairs.empty:
        return "pending"
    return mean_interval(paired_differences(examples, list(zip(pairs["checkpoint_hash"], pairs["checkpoint_hash_base"])),
                                            attack_key_of(group)))


def _attack_sets(frame: pd.DataFrame) -> pd.Series:
    """Each row's set of attacks: those its checkpoint has under its union key, 'bert-attack,pwws'."""
    attacks = frame[frame["attack"] != UNION].groupby(["checkpoint_hash", "union_key"])["attack"].agg(
        lambda names: ",".join(sorted(set(names), key=lambda a: (attack_rank(a), a))))
    return pd.Series([attacks.get((c, k), "") for c, k in zip(frame["checkpoint_hash"], frame["union_key"])],
                     index=frame.index, dtype=object)


def _mean_std(values: pd.Series) -> str:
    """'0.820 ± 0.028': mean and sample SD (ddof 1) over the seeds of a row; '0.830' for one seed.

    The sample SD, because 2-3 seeds are a sample of the seeds one could train: the population
    formula (ddof 0) reads sqrt((S-1)/S) of it, 0.71 at two seeds.
    """
    values = values.astype(float)
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}" if len(values) > 1 else f"{values.mean():.3f}"


def _span(group: pd.DataFrame) -> str:
    """Attacked examples per checkpoint: '200', or '180-200 (40 pending)' while some attacks are still running.

    A partial union (no example every attack finished yet) counts 0, never NaN.
    """
    counts = pd.to_numeric(group["num_examples"], errors="coerce").fillna(0).astype(int)
    low, high = int(counts.min()), int(counts.max())
    pending = int(pd.to_numeric(group.get("pending_examples", pd.Series(0)), errors="coerce").fillna(0).sum())
    return count_cell(low if low == high else f"{low}-{high}", pending)


def paper_dataset(summary: pd.DataFrame, dataset: str | None) -> str | None:
    """The paper's name of the dataset: ``dataset`` if given, else the one ``data.dataset`` in the store."""
    if dataset:
        return PAPER_DATASETS.get(dataset, dataset)
    recorded = summary.get("config.data.dataset", pd.Series(dtype=str)).dropna().unique()
    return PAPER_DATASETS.get(str(recorded[0])) if len(recorded) == 1 else None


def method_frame(summary: pd.DataFrame, examples: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the summary with what each checkpoint is: ``row`` (method), ``mode``, ``base`` (its method without
    VDA and add-ons), ``configuration``, ``base_configuration``, ``attacks`` and ``protocol label``; the
    per-example rows with their union rows). Every checkpoint, every epoch: the tables keep one per seed
    (``one_checkpoint_per_seed``), the curves over epochs (``analysis.figures``) keep them all.
    """
    if summary.empty:
        raise ValueError("the store has no attacked checkpoints; run the sweep (and its attacks) first")
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
    frame["base"] = [row.split("+")[0] for row in frame["row"]]
    frame["configuration"], frame["base_configuration"] = configurations(frame)
    frame["attacks"], frame["protocol label"] = _attack_sets(frame), protocol_labels(frame)
    return frame, examples


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
    if table not in PAPER_TABLES:
        raise ValueError(f"unknown paper table {table!r}; use one of {', '.join(PAPER_TABLES)}")
    frame, examples = method_frame(summary, examples)
    paper = paper_numbers(table, paper_dataset(frame, dataset) or "")
    frame = one_checkpoint_per_seed(frame)
    bases = frame[frame["row"] == frame["base"]]
    records = []
    # One union key = one protocol with one set of parameters on one example set, and one set of
    # attacks: rows of two keys (the legacy protocol, another threshold, code version or attack set)
    # are different measurements and never pooled. Within it, several attacks give one column group
    # each, and the headline columns are the union's.
    for (_, attacks, row, mode, configuration), family in frame.groupby(
            ["union_key", "attacks", "row", "mode", "configuration"], sort=False):
        names = attacks.split(",")
        group = family[family["attack"] == UNION] if (family["attack"] == UNION).any() else family
        record = {"protocol": group["protocol label"].iloc[0], "Method": row, "mode": mode,
                  "configuration": configuration, "seeds": int(group["config.seed"].nunique()),
                  "examples": _span(group) if "num_examples" in group else "?"}
        for label, column in METRICS.items():
            record[label] = _attack_accuracy(group, examples) if column == "attack_acc" else _mean_std(group[column])
        record["Δ Att Acc"] = _paired_delta(group, bases, examples)
        record["attacks"] = attacks
        if len(names) > 1:  # one column group per attack; the headline Att Acc and Δ are the union's
            for attack in names:
                part = family[family["attack"] == attack]
                record[f"{attack} Att Acc"] = _attack_accuracy(part, examples)
                record[f"{attack} Δ"] = _paired_delta(part, bases, examples)
        if "flagged_share" in group:
            record["Flagged"] = format_number(group["flagged_share"].astype(float).mean())
        if row in paper:
            record.update({f"paper {label}": value for label, value in zip(METRICS, paper[row])})
        records.append(record)
    result = pd.DataFrame(records).astype(object).fillna("")  # a protocol with one attack has no per-attack column group
    if not result["configuration"].any():  # nothing varies but the row and mode: no column for it
        result = result.drop(columns="configuration")
    base = [m.split("+")[0] for m in result["Method"]]
    result["_order"] = [ROW_ORDER.index(b) if b in ROW_ORDER else len(ROW_ORDER) for b in base]
    result["_plus"] = [m.count("+") for m in result["Method"]]
    order = ["protocol", "_order", "_plus", "Method", "mode", *(["configuration"] if "configuration" in result else []),
             "attacks"]
    return result.sort_values(order, kind="stable").drop(columns=["_order", "_plus"]).reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, help="a sweep's store/ directory")
    parser.add_argument("--table", default="main", choices=PAPER_TABLES,
                        help="which published numbers to put beside: main (Tables 2-3), ablation (4), ada (5)")
    parser.add_argument("--dataset", default=None,
                        help="the paper's dataset for the published columns (default: the store's data.dataset): "
                             f"{', '.join(sorted(set(PAPER_DATASETS.values())))}")
    parser.add_argument("--verdicts", nargs="+", metavar="FILE", default=(),
                        help="reading-record CSVs: add the reader-adjusted Att Acc per attack key and method "
                             "(analysis.verdicts)")
    args = parser.parse_args(argv)
    summary, _, _ = load_results(args.store)
    examples = load_examples(args.store)
    print(to_markdown(reproduction_table(summary, examples, args.dataset, args.table)))
    if args.verdicts:
        labelled, unmatched = join_verdicts(examples, read_verdicts(args.verdicts, examples))
        print(f"\nReaders' verdicts ({len(unmatched)} joined no success and are not applied):\n")
        print(to_markdown(reader_table(summary, labelled)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
