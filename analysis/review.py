"""A blinded, stratified, seeded sample of successful attacks for a reader, and where it is read.

    python -m attack_workers report --store S --review 20     # a Review tab in report.html
    python -m attack_workers review --store S -n 20 --reviewer ana --out verdicts.csv   # the same in a terminal

Why a sample per (method, attack key): the reader-adjusted Att Acc (``verdicts``) needs one
acceptance rate per method and attack, estimated from a random sample of that stratum's
successes. ``review_sample`` draws ``n`` per stratum with a generator seeded by (seed, stratum), so
a stratum's draw does not move when another stratum is added, then shuffles all strata together
into one reading order. Reading is blind (no model, method, attack or audit shown) and the shuffle
makes any prefix of the order a random sample of every stratum: a reader who stops half-way still
leaves a sample the estimator can use.

Both the Review tab and the terminal write the reading-record CSV (``RECORD_COLUMNS``: the columns
of docs/results/reading/ plus the attack key, the second sentence of a pair, reviewer and time),
which ``python -m attack_workers summary --verdicts FILE`` reads.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from analysis.verdicts import SUCCEEDED, method_groups
from attack_workers.results.keys import UNION
from attack_workers.results.store import digest

RECORD_COLUMNS = ["protocol", "attack", "checkpoint_hash", "example_id", "original_text", "perturbed_text",
                  "substitutions", "audit_flagged", "verdict", "reason", "attack_key", "original_text_b",
                  "perturbed_text_b", "reviewer", "time"]
REASONS = {"g": "grammar", "m": "meaning changed", "l": "label changed", "o": "other"}  # key -> reject reason


def review_sample(summary: pd.DataFrame, examples: pd.DataFrame, per_stratum: int, seed: int = 0) -> pd.DataFrame:
    """``per_stratum`` successes of each (method group, attack key) (all where fewer), in one shuffled order.

    Union rows are not sampled: a union's success is one of its attacks' successes, read there.
    Each row gets ``item`` (a short id of its text, stable across redraws) and ``stratum``.
    """
    if per_stratum < 1:
        raise ValueError(f"--review {per_stratum}: the sample size per method and attack must be at least 1")
    groups = method_groups(summary)[["checkpoint_hash", "attack_key", "group"]]
    successes = examples[(examples["status"] == SUCCEEDED) & (examples["attack"] != UNION)]
    successes = successes.merge(groups, on=["checkpoint_hash", "attack_key"], how="inner")
    drawn = []
    for (group, key), rows in successes.groupby(["group", "attack_key"], sort=True):
        state = int(digest([str(seed), group, key], 8), 16)
        drawn.append(rows.sort_values(["checkpoint_hash", "example_id"])
                     .sample(n=min(per_stratum, len(rows)), random_state=state).assign(stratum=f"{group} / {key}"))
    if not drawn:
        return successes.assign(item=pd.Series(dtype=str), stratum=pd.Series(dtype=str))
    sample = pd.concat(drawn, ignore_index=True)
    order = np.random.default_rng(seed).permutation(len(sample))
    sample = sample.iloc[order].reset_index(drop=True)
    sample["item"] = [digest([r.checkpoint_hash, r.attack_key, r.example_id, r.perturbed_text,
                              str(r.perturbed_text_b or "")], 12) for r in sample.itertuples()]
    return sample


def record_fields(row: Any) -> dict[str, str]:
    """A sampled row's reading-record columns, except the verdict, reason, reviewer and time."""
    def text(value: Any) -> str:
        return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)

    return {"protocol": text(row["protocol"]), "attack": text(row["attack"]),
            "checkpoint_hash": text(row["checkpoint_hash"]), "example_id": text(row["example_id"]),
            "original_text": text(row["original_text"]), "perturbed_text": text(row["perturbed_text"]),
            "substitutions": text(row["substitutions"]), "audit_flagged": str(bool(row["audit_flagged"])),
            "attack_key": text(row["attack_key"]), "original_text_b": text(row["original_text_b"]),
            "perturbed_text_b": text(row["perturbed_text_b"])}


# ---------------------------------------------------------------- the Review tab


def review_blob(sample: pd.DataFrame, seed: int, per_stratum: int) -> dict[str, Any]:
    """The tab's data: what is shown (texts and substitutions) apart from what only the CSV carries.

    ``id`` names the sample (its items and seed): the page keeps its progress in the browser's
    local storage under it, so two reports opened from disk (one origin, file://) never mix answers.
    """
    items = [[r["item"], r["original_text"], _text_or_none(r["original_text_b"]), r["perturbed_text"],
              _text_or_none(r["perturbed_text_b"]), json.loads(r["substitutions"] or "[]")]
             for _, r in sample.iterrows()]
    records = {r["item"]: record_fields(r) for _, r in sample.iterrows()}
    return {"id": digest([str(seed), *sample["item"]], 12), "seed": seed, "per_stratum": per_stratum,
            "strata": int(sample["stratum"].nunique()) if len(sample) else 0,
            "columns": RECORD_COLUMNS, "items": items, "records": records}


def _text_or_none(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


# ---------------------------------------------------------------- the terminal


def read_in_terminal(sample: pd.DataFrame, out: Path, reviewer: str, ask: Callable[[str], str] | None = None,
                     show: TextIO = sys.stdout, clock: Callable[[], float] = time.time) -> int:
    """Show each unread item of ``sample`` and append the reader's verdict to ``out``; returns how many were read.

    Keys: a acceptable; g, m, l reject (grammar, meaning changed, label changed); o reject with a
    typed reason; s skip; q quit. ``out`` is rewritten (atomically) after every answer, and items
    it already holds are skipped, so quitting and coming back resumes where the reader stopped.
    """
    if not reviewer.strip():
        raise ValueError("--reviewer is empty: the verdicts must say who read them")
    ask = ask or input  # looked up at call time: a caller (or a test) may replace input()
    done = pd.read_csv(out, keep_default_na=False, dtype=str) if out.is_file() else pd.DataFrame(columns=RECORD_COLUMNS)
    seen = set(zip(done["checkpoint_hash"], done["attack_key"], done["example_id"], done["perturbed_text"]))
    records = done.to_dict("records")
    todo = [r for _, r in sample.iterrows()
            if (r["checkpoint_hash"], r["attack_key"], r["example_id"], r["perturbed_text"]) not in seen]
    color = show.isatty() and os.environ.get("NO_COLOR") is None
    read = 0
    for position, row in enumerate(todo, start=1):
        show.write(f"\n[{position} of {len(todo)} to read; {len(records)} answered in {out.name}]\n")
        pairs = json.loads(row["substitutions"] or "[]")
        show.write("original: " + highlight(_join(row, "original_text"), [a for a, _ in pairs], color) + "\n")
        show.write("attacked: " + highlight(_join(row, "perturbed_text"), [b for _, b in pairs], color) + "\n")
        answer = _answer(ask)
        if answer is None:
            break
        if answer == ("skip", ""):
            continue
        verdict, reason = answer
        records.append({**record_fields(row), "verdict": verdict, "reason": reason, "reviewer": reviewer,
                        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock()))})
        write_records(records, out)
        read += 1
    return read


def _join(row: Any, column: str) -> str:
    second = _text_or_none(row[f"{column}_b"])
    return row[column] if second is None else f"{row[column]} || {second}"


def _answer(ask: Callable[[str], str]) -> tuple[str, str] | None:
    """(verdict, reason), ('skip', '') or None to quit; asks again on a key it does not know."""
    while True:
        key = ask("[a]cceptable, reject: [g]rammar [m]eaning [l]abel [o]ther; [s]kip [q]uit > ").strip().lower()
        if key == "a":
            return "acceptable", ""
        if key in ("g", "m", "l"):
            return "reject", REASONS[key]
        if key == "o":
            note = ask("reason > ").strip()
            return "reject", f"other: {note}" if note else "other"
        if key == "s":
            return "skip", ""
        if key == "q":
            return None


def highlight(text: str, words: list[str], color: bool) -> str:
    """``text`` with each of ``words`` marked in order: reverse video on a terminal, [[word]] elsewhere."""
    out, at = [], 0
    for word in words:
        found = _find_word(text, word, at)
        if found < 0:
            continue
        marked = f"\033[7m{word}\033[0m" if color else f"[[{word}]]"
        out += [text[at:found], marked]
        at = found + len(word)
    return "".join(out) + text[at:]


def _find_word(text: str, word: str, start: int) -> int:
    """The next index of ``word`` in ``text`` from ``start`` as a whole word, -1 if none."""
    at = text.find(word, start)
    while at >= 0:
        before = text[at - 1] if at > 0 else " "
        after = text[at + len(word)] if at + len(word) < len(text) else " "
        if not (before.isalnum() or after.isalnum()):
            return at
        at = text.find(word, at + 1)
    return -1


def write_records(records: list[dict[str, str]], out: Path) -> None:
    """The reading records as CSV (``RECORD_COLUMNS``), written through a temp file and renamed into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RECORD_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    tmp.replace(out)
