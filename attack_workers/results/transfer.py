"""Transfer rows: successful adversarial texts of one checkpoint, replayed on another; their rates and table.

One row per (source checkpoint, target checkpoint, attack key, example): the source's successful
text, the target's prediction on the original and on the perturbed text, and the substituted
words that never occur in the source checkpoint's training split. Written by
``attack_workers.runtime.transfer``; read here into the transfer matrix.

Layout, next to (or apart from) a results store, written as ``store.py`` writes (atomic files, no locks)::

    <store>/transfer/<source hash>/<target hash>/<attack key>.<ids digest>.parquet

The transfer rate of (source, target, attack key) is the share of the target's correctly
classified originals that the perturbed text fools: a text whose original the target already gets
wrong says nothing about transfer, so it leaves the denominator (and is still counted in
``replayed``). Its interval is the Wilson interval over that n (``uncertainty.wilson_interval``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from attack_workers.results.store import _read_parquet, _visible, _write_parquet, check_rows, digest
from attack_workers.results.uncertainty import format_ci, wilson_interval

TRANSFER_SCHEMA = pa.schema([
    ("source_hash", pa.string()),  # the checkpoint the attack found the text against
    ("source_run_id", pa.string()),
    ("target_hash", pa.string()),  # the checkpoint the text is replayed on (= source_hash: a self-check)
    ("target_run_id", pa.string()),
    ("target_path", pa.string()),
    ("attack_key", pa.string()),  # the source rows' attack key (protocol, parameters, models, data)
    ("protocol", pa.string()),
    ("attack", pa.string()),
    ("dataset", pa.string()),
    ("split", pa.string()),
    ("example_id", pa.string()),
    ("label", pa.int64()),
    ("original_text", pa.string()),
    ("original_text_b", pa.string()),
    ("perturbed_text", pa.string()),
    ("perturbed_text_b", pa.string()),
    ("substitutions", pa.string()),  # the source row's JSON [[original word, new word], ...]
    ("unseen_words", pa.string()),  # JSON list: new words absent from the source's train split; null: unknown
    ("target_clean_pred", pa.int64()),  # the target's prediction on the original text
    ("target_adv_pred", pa.int64()),  # ... on the perturbed text
    ("target_correct", pa.bool_()),  # target_clean_pred == label: the example enters the rate's n
    ("fooled", pa.bool_()),  # target_adv_pred != label
    ("finished_at", pa.float64()),
])
TRANSFER_COLUMNS = tuple(TRANSFER_SCHEMA.names)
TRANSFER_KEY = ["source_hash", "target_hash", "attack_key", "example_id"]
GROUP = ["source_hash", "target_hash", "attack_key"]


class TransferStore:
    """Transfer rows under ``<root>/transfer``; ``root`` may be the source results store itself."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self.directory = self.root / "transfer"

    def path_for(self, source_hash: str, target_hash: str, attack_key: str, example_ids: Iterable[str]) -> Path:
        """The file of one (source, target, attack key) over exactly these examples: its existence is the resume."""
        return self.directory / source_hash / target_hash / f"{attack_key}.{digest(sorted(example_ids))}.parquet"

    def write(self, rows: list[dict[str, Any]]) -> Path:
        """Write the rows of one (source, target, attack key), atomically, as one file."""
        check_rows(rows, TRANSFER_COLUMNS, "TransferStore.write", "TRANSFER_SCHEMA")
        groups = {tuple(r[c] for c in GROUP) for r in rows}
        if len(groups) != 1:
            raise ValueError(f"TransferStore.write: rows must share one (source, target, attack key), got {groups}")
        (source, target, key), = groups
        path = self.path_for(source, target, key, (r["example_id"] for r in rows))
        return _write_parquet(pa.Table.from_pylist(rows, schema=TRANSFER_SCHEMA), path)

    def load(self) -> pd.DataFrame:
        """Every transfer row, the latest per (source, target, attack key, example) when re-run."""
        files = _visible(self.directory, "*/*/*.parquet")
        if not files:
            return pd.DataFrame({name: pd.Series(dtype=field.type.to_pandas_dtype())
                                 for name, field in zip(TRANSFER_COLUMNS, TRANSFER_SCHEMA)})
        rows = _read_parquet(files).sort_values("finished_at", kind="stable")
        return rows.drop_duplicates(TRANSFER_KEY, keep="last").sort_values(TRANSFER_KEY).reset_index(drop=True)


def transfer_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (source, target, attack key): ``replayed`` texts, ``n`` (the target's correctly classified
    originals), ``fooled`` (of those n), ``rate`` = fooled / n with ``rate_low``/``rate_high`` (Wilson, 95 %)."""
    records = []
    for (source, target, key), group in rows.groupby(GROUP, sort=True):
        first = group.iloc[0]
        n = int(group["target_correct"].sum())
        fooled = int((group["target_correct"] & group["fooled"]).sum())
        low, high = wilson_interval(fooled, n)
        records.append({
            "source_hash": source, "source_run_id": first["source_run_id"], "target_hash": target,
            "target_run_id": first["target_run_id"], "attack_key": key, "protocol": first["protocol"],
            "attack": first["attack"], "dataset": first["dataset"], "split": first["split"],
            "replayed": len(group), "n": n, "fooled": fooled, "rate": fooled / n if n else math.nan,
            "rate_low": low, "rate_high": high, "self": source == target,
        })
    return pd.DataFrame(records)


def unseen_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (source, attack key): of its successes, how many substitute a word never seen in the source's
    training split (``with_unseen`` of ``known``: successes whose substitutions were recorded), the share with
    its Wilson interval, and the unseen words that the most successes use."""
    successes = rows.drop_duplicates(["source_hash", "attack_key", "example_id"])
    records = []
    for (source, key), group in successes.groupby(["source_hash", "attack_key"], sort=True):
        lists = [json.loads(v) for v in group["unseen_words"] if isinstance(v, str)]
        with_unseen = sum(1 for words in lists if words)
        low, high = wilson_interval(with_unseen, len(lists))
        common = Counter(w for words in lists for w in {w.lower() for w in words}).most_common(5)  # successes
        first = group.iloc[0]
        records.append({
            "source_hash": source, "source_run_id": first["source_run_id"], "attack_key": key,
            "protocol": first["protocol"], "attack": first["attack"], "successes": len(group), "known": len(lists),
            "with_unseen": with_unseen, "share": with_unseen / len(lists) if lists else math.nan,
            "share_low": low, "share_high": high, "common_unseen": ", ".join(f"{w} ({c})" for w, c in common),
        })
    return pd.DataFrame(records)


def _render(header: list[str], lines: list[list[str]], numbers: range) -> list[str]:
    """Columns padded to their widest cell; the ``numbers`` columns right-aligned."""
    widths = [max(len(h), *(len(v[i]) for v in lines)) for i, h in enumerate(header)]

    def render(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if i in numbers else v.ljust(w)
                         for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    return [render(header), render(["-" * w for w in widths]), *map(render, lines)]


def _name(run_id: Any, checkpoint_hash: str) -> str:
    return f"{run_id} ({str(checkpoint_hash)[:8]})"


def format_transfer_table(summary: pd.DataFrame, unseen: pd.DataFrame) -> str:
    """The transfer matrix, one line per source -> target and attack: "rate [CI]" and n; then the share of
    each source's successes that substitute a word never seen in its training split."""
    if summary.empty:
        return "(no transfer results)"
    lines = []
    for rec in summary.sort_values(["protocol", "attack", "source_run_id", "source_hash", "self", "target_run_id"],
                                   ascending=[True, True, True, True, False, True], kind="stable").to_dict("records"):
        lines.append([rec["protocol"], rec["attack"], _name(rec["source_run_id"], rec["source_hash"]),
                      "(self) " + _name(rec["target_run_id"], rec["target_hash"]) if rec["self"]
                      else _name(rec["target_run_id"], rec["target_hash"]),
                      str(rec["replayed"]), str(rec["n"]), format_ci(rec["rate"], rec["rate_low"], rec["rate_high"])])
    out = _render(["protocol", "attack", "source", "-> target", "replayed", "n", "transfer rate [95% CI]"], lines,
                  range(4, 7))
    if not unseen.empty:
        rows = [[rec["protocol"], rec["attack"], _name(rec["source_run_id"], rec["source_hash"]),
                 str(rec["known"]) + (f" of {rec['successes']}" if rec["known"] < rec["successes"] else ""),
                 str(rec["with_unseen"]),
                 format_ci(rec["share"], rec["share_low"], rec["share_high"]), rec["common_unseen"] or "-"]
                for rec in unseen.to_dict("records")]
        out += ["", "successes that substitute a word never seen in the source's training split:",
                *_render(["protocol", "attack", "source", "successes", "unseen", "share [95% CI]", "most frequent"],
                         rows, range(3, 6))]
    return "\n".join(out)
