"""The per-checkpoint table: one row per (checkpoint, attack key), and the one way every surface prints it.

The CLI (``summary``, ``evaluate``), the HTML report's summary and the sweep's ``summary.md`` /
``summary.csv`` (``analysis.summary``) all start from ``checkpoint_table`` and print its cells with
``format_cells``, so they agree on what a row is, on the column names and on missing values:

- a number that is undefined or not recorded prints as "nan" (``uncertainty.format_number``);
- n is a count, never "2.0": a partial row (some planned examples or some of a union's attacks
  not finished) prints "2 (3 pending)", a ``--union-only`` per-attack row "270 (30 spared: ...)"
  (``outcomes.spared_note``: those examples are left out of its n);
- Att Acc carries its 95 % Wilson interval over the checkpoint's examples, "0.210 [0.185, 0.237]";
- "Flagged" (the share of successes the validity audit flags) and "Holes" (the share of their
  substitutions with no word vector) appear when the summary has them.

``checkpoint_table`` keeps values (the CSV is numeric); ``format_cells`` turns them into text.
"""

from __future__ import annotations

import math

import pandas as pd

from attack_workers.results.keys import UNION, attack_rank
from attack_workers.results.outcomes import spared_note
from attack_workers.results.uncertainty import format_ci, format_number

NUMBERS = {"Ori Acc": "clean_acc", "Att Acc": "attack_acc", "Att Acc low": "attack_acc_low",
           "Att Acc high": "attack_acc_high", "Q Num": "avg_queries", "Perturb %": "perturbed_pct"}
AUDIT = {"Holes": "hole_share", "Flagged": "flagged_share"}  # shown when the summary has them
COUNTS = {"n": "num_examples", "pending": "pending_examples", "spared": "num_spared"}


def checkpoint_table(summary: pd.DataFrame, extra_columns: tuple[str, ...] = (), sort: bool = True) -> pd.DataFrame:
    """One row per (checkpoint, attack key) of a store summary, with the values every table prints.

    Rows come sorted by run, protocol, attack key and attack (the registry's order, the union last),
    or in the summary's order without ``sort`` (a ranking's). ``extra_columns`` (summary columns
    such as ``config.vda.sigma``) follow the identifying columns.
    """
    unknown = [c for c in extra_columns if c not in summary.columns]
    if unknown:
        raise ValueError(f"unknown summary column(s) {unknown}; known: {', '.join(summary.columns)}")
    if summary.empty:
        return pd.DataFrame()
    rows = summary.assign(attack=_column(summary, "attack").fillna("bert-attack"))
    rows = rows.assign(_order=rows["attack"].map(lambda a: (attack_rank(str(a)), str(a))))
    if sort:
        rows = rows.sort_values(["run_id", "protocol", "attack_key", "_order"], kind="stable")
    table = pd.DataFrame({
        "run": rows["run_id"].astype(str), "checkpoint": rows["checkpoint_hash"].astype(str).str[:8],
        "protocol": rows["protocol"], "attack": rows["attack"], "attack key": rows["attack_key"].astype(str).str[:8],
        "data": rows["dataset"].astype(str) + "/" + rows["split"].astype(str),
        **{c: rows[c] for c in extra_columns},
        **{label: _counts(rows, column) for label, column in COUNTS.items()},
        **{label: _column(rows, column).astype(float) for label, column in NUMBERS.items()},
        **{label: rows[column].astype(float) for label, column in AUDIT.items() if column in rows},
    })
    return table.reset_index(drop=True)


def format_cells(table: pd.DataFrame) -> pd.DataFrame:
    """``checkpoint_table``'s rows (and any columns added to it) as text: the cells every surface prints."""
    if table.empty:
        return table
    out = table.drop(columns=["pending", "spared", "Att Acc low", "Att Acc high"])
    out["n"] = [count_cell(n, pending, spared) for n, pending, spared in zip(table["n"], table["pending"],
                                                                               table["spared"])]
    out["Att Acc"] = [format_ci(*v) for v in zip(table["Att Acc"], table["Att Acc low"], table["Att Acc high"])]
    for column in out.columns:
        if column not in ("n", "Att Acc"):
            out[column] = [format_number(v) if isinstance(v, float) else str(v) for v in out[column]]
    return out.rename(columns={"Att Acc": "Att Acc [95 % CI]"})


def count_cell(n: int | str, pending: int = 0, spared: int = 0) -> str:
    """'300', '2 (3 pending)' for a partial row, '270 (30 spared: not attacked, left out of n)'."""
    notes = [f"({pending} pending)" if pending else "", spared_note(spared)]
    return " ".join([str(n), *(note for note in notes if note)])


def format_paper_table(summary: pd.DataFrame, extra_columns: tuple[str, ...] = ()) -> str:
    """The paper's table (Ori Acc, Att Acc, Q Num, Perturb) as aligned text, one line per checkpoint and key.

    At the paper's sample sizes the Att Acc interval is as wide as many of the differences it
    reports. The hole share per dataset (``hole_shares``) follows the table.
    """
    table = checkpoint_table(summary, extra_columns)
    if table.empty:
        return "(no results)"
    cells = format_cells(table)
    header, lines = list(cells.columns), cells.values.tolist()
    widths = [max(len(h), *(len(v[i]) for v in lines)) for i, h in enumerate(header)]
    first_number = header.index("n")

    def render(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if i >= first_number else v.ljust(w)
                         for i, (v, w) in enumerate(zip(values, widths)))

    per_dataset = [f"{data} {protocol} {format_number(share)} of {n}"
                   for data, protocol, share, n in hole_shares(summary)]
    footer = ["hole share per dataset (substituted words of successes with no word vector): " + "; ".join(per_dataset)]
    return "\n".join([render(header), render(["-" * w for w in widths]), *map(render, lines),
                      *(footer if per_dataset else [])])


def hole_shares(summary: pd.DataFrame | None) -> list[tuple[str, str, float, int]]:
    """(dataset/split, protocol, hole share, substituted words) pooled over a summary's attacks (union
    rows, which repeat their attacks' rows, left out): how much of each dataset's successes passed
    the word filter with no vector to check, i.e. how well the lexicon covers that dataset."""
    needed = {"dataset", "split", "protocol", "hole_substitutions", "substituted_words"}
    if summary is None or len(summary) == 0 or not needed <= set(summary.columns):
        return []
    rows = summary[summary["attack"] != UNION] if "attack" in summary.columns else summary
    rows = rows.dropna(subset=["hole_substitutions", "substituted_words"])
    out = []
    for (dataset, split, protocol), group in rows.groupby(["dataset", "split", "protocol"], sort=True):
        substituted = int(group["substituted_words"].sum())
        holes = float(group["hole_substitutions"].sum())
        out.append((f"{dataset}/{split}", str(protocol), holes / substituted if substituted else math.nan, substituted))
    return out


def protocol_labels(frame: pd.DataFrame) -> pd.Series:
    """Each row's protocol, with what tells its union key apart from the protocol's other keys in ``frame``.

    'vda-paper (word cos >= 0.7)' always names its threshold. Two keys of one protocol add the
    attack parameters that differ ('strict (strict_window_similarity=0.8)'), or, where none does
    (another attack-code version, MLM, lexicon or data split, which the key hashes but the summary
    does not spell out), the key itself ('strict (key 3f2a9c1e)'): never two rows that read the same.
    """
    labels = pd.Series("", index=frame.index, dtype=object)
    for protocol, rows in frame.groupby("protocol", sort=False):
        keys = rows.groupby("union_key", sort=False).first()
        differing = [c for c in keys.columns if c.startswith("attack.") and keys[c].astype(str).nunique() > 1]
        for key, first in keys.iterrows():
            parts = []
            threshold = first.get("attack.word_similarity_threshold")
            if protocol == "vda-paper" and threshold is not None and pd.notna(threshold):
                parts.append(f"word cos >= {float(threshold):g}")
            parts += [f"{c[len('attack.'):]}={first[c]}" for c in differing
                      if not (protocol == "vda-paper" and c == "attack.word_similarity_threshold")]
            if len(keys) > 1 and not differing:
                parts.append(f"key {str(key)[:8]}")
            labels[rows.index[rows["union_key"] == key]] = f"{protocol} ({', '.join(parts)})" if parts else protocol
    return labels


def key_labels(summary: pd.DataFrame) -> pd.Series:
    """Each row's attack key in words: its protocol label and its attack, or the attacks of its union.

    'strict: union of bert-attack,textfooler,pwws', 'vda-paper (word cos >= 0.7): bert-attack': what
    a plot's series or panel and a table's group are named by, one per key (``protocol_labels``).
    """
    frame = summary.assign(attack=_column(summary, "attack").fillna("bert-attack"))
    if "union_key" not in frame:
        frame["union_key"] = frame["attack_key"]
    attacks = _column(frame, "attacks")
    what = [f"union of {names}" if attack == UNION else str(attack) for attack, names in zip(frame["attack"], attacks)]
    return protocol_labels(frame) + ": " + pd.Series(what, index=frame.index)


def _column(rows: pd.DataFrame, name: str) -> pd.Series:
    return rows[name] if name in rows else pd.Series(math.nan, index=rows.index, dtype=object)


def _counts(rows: pd.DataFrame, name: str) -> pd.Series:
    """A count column as ints; missing (a summary without it, an old row) is 0."""
    return pd.to_numeric(_column(rows, name), errors="coerce").fillna(0).astype(int)
