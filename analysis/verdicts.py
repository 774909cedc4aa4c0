"""Readers' verdicts on successful attacks, joined to the store's rows, and Att Acc adjusted by them.

A verdict file is a reading-record CSV (docs/results/reading/, or the Review tab's "Download
verdicts", or ``python -m attack_workers review``): one row per read success with ``verdict``
``acceptable`` (same meaning, grammatical, same gold label) or ``reject``. Rows whose verdict is
still empty are not read yet and are ignored.

**The join.** A verdict is about one text: it joins the store row with the same
(checkpoint hash, attack key, example id, perturbed text), and the second sentence of a pair
too where the file has ``perturbed_text_b``. A row re-attacked since (another text for the same
example) keeps no verdict, and a verdict that joins nothing is reported, never applied.
Older records carry no ``attack_key``: it is looked up from (checkpoint hash, protocol, attack),
and a record that names two attack keys that way is refused with the fix (add the column).

**Reader-adjusted Att Acc** of a checkpoint is the share of its examples that no reader-accepted
attack broke: robust examples, plus successes a reader rejects. With ``a`` the robust share
(Att Acc), ``q`` the success share and ``p = r / m`` the accepted share of a random sample of
``m`` read successes (``r`` accepted), the estimate is ``a + (1 - p) q``. A method over seeds takes
the mean of that over its checkpoints, with ``p`` pooled over the method's verdicts (one
acceptance per method and attack key: the Review tab samples that way).

**Its interval, by the delta method (law of total variance).** Let Z be 1 for an example that is
robust or whose success a reader would reject: Att Acc* = E[Z]. Given the examples (and which of
their successes a reader would accept), the estimate's mean is the examples' own mean of Z and its
variance comes from the verdict sample alone: ``q^2 p(1-p) / m``, times the finite-population
correction ``(s - m) / (s - 1)`` of drawing ``m`` of the ``s`` successes without replacement (zero
when every success was read). The variance of the examples' mean of Z is the example (and seed)
sampling: ``uncertainty``'s two-level variance of the matrix Y = robust + (1 - p) success, plus
the validity coin of each success that Y averages out, ``p(1-p) q / (S N)``; with one checkpoint
this sum is exactly the binomial ``A(1-A) / N``. The terms add because the verdict sample is drawn
independently of the attack's randomness. The interval is t-based with Satterthwaite's degrees
of freedom over the terms (the verdict term has ``m - 1``), so a small verdict sample widens it the
way a small seed count does. ``p(1-p)`` is evaluated at the Agresti-Coull centre
``(r + z^2/2) / (m + z^2)``: at r = 0 or r = m the plug-in variance would be zero and the interval
would claim the verdicts are certain. Why not a bootstrap: at m = 20 verdicts the resampled
acceptance takes 21 values and a percentile bootstrap inherits the Wald interval's
under-coverage near 0 and 1, while the delta terms are the same numbers ``mean_interval`` already
uses. The coverage is simulated in tests/analysis/test_verdicts.py
(``test_adjusted_interval_covers_by_simulation``, -s prints the table).

**Paired Δ** of the adjusted number between a method and its base (the same strategy without VDA,
the same seed and attack key, as ``reproduce`` pairs them): ``uncertainty.paired_differences``'s
pairing on the Y matrices, plus both methods' validity and verdict terms (independent samples).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

from analysis.methods import configurations, one_checkpoint_per_seed, row_name
from attack_workers.results.keys import UNION
from attack_workers.results.outcomes import ROBUST_STATUS, SPARED
from attack_workers.results.uncertainty import (MIN_SEEDS, _example_level, _seed_level, _t_quantile, format_ci,
                                                format_number, wilson_interval)

VERDICTS = ("acceptable", "reject")
VERDICT_KEY = ["checkpoint_hash", "attack_key", "example_id", "perturbed_text"]
REQUIRED = ["checkpoint_hash", "example_id", "perturbed_text", "verdict"]
SUCCEEDED = "succeeded"


# ---------------------------------------------------------------- reading and joining


def read_verdicts(paths: Iterable[str | Path], examples: pd.DataFrame) -> pd.DataFrame:
    """The read rows of every verdict CSV, one per text (``VERDICT_KEY``), with its attack key resolved.

    ``examples`` are the store's rows: they give the attack key of records written without one.
    Several verdicts on one text (two readers, or one reader who changed their mind) become one:
    each reader's latest (by ``time`` where the file has it, else the later row), then the majority
    of readers, a tie counting as acceptable (the attack stands: no robustness is claimed on a split vote).
    """
    frames = []
    for path in paths:
        frame = pd.read_csv(path, keep_default_na=False, dtype=str)
        missing = [c for c in REQUIRED if c not in frame]
        if missing:
            raise ValueError(f"{path}: verdict file lacks column(s) {missing}; it needs {REQUIRED} and attack_key "
                             "(or protocol and attack), as the Review tab's download writes")
        frame = frame[frame["verdict"].str.strip() != ""].assign(source=str(path))
        bad = sorted(set(frame["verdict"]) - set(VERDICTS))
        if bad:
            raise ValueError(f"{path}: verdict(s) {bad} are neither {' nor '.join(VERDICTS)}")
        frames.append(_with_attack_key(frame, examples, path))
    if not frames:
        raise ValueError("no verdict files given")
    verdicts = pd.concat(frames, ignore_index=True)
    for column, default in (("perturbed_text_b", ""), ("reviewer", ""), ("time", ""), ("reason", "")):
        if column not in verdicts:
            verdicts[column] = default
        verdicts[column] = verdicts[column].fillna(default)
    return _one_per_text(verdicts)


def _with_attack_key(frame: pd.DataFrame, examples: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """``frame`` with ``attack_key`` filled from (checkpoint hash, protocol, attack) where it has none."""
    if "attack_key" in frame and (frame["attack_key"] != "").all():
        return frame
    if "protocol" not in frame:
        raise ValueError(f"{path}: no attack_key and no protocol column: cannot tell which attack a verdict is on")
    attack = frame["attack"] if "attack" in frame else pd.Series("bert-attack", index=frame.index)
    frame = frame.assign(attack=attack.replace("", "bert-attack"))
    keys = examples[["checkpoint_hash", "protocol", "attack", "attack_key"]].drop_duplicates()
    counts = keys.groupby(["checkpoint_hash", "protocol", "attack"])["attack_key"].nunique()
    ambiguous = counts[counts > 1]
    given = frame["attack_key"] if "attack_key" in frame else pd.Series("", index=frame.index)
    unkeyed = frame[given == ""].set_index(["checkpoint_hash", "protocol", "attack"]).index
    clash = sorted({k for k in unkeyed if k in ambiguous.index})
    if clash:
        raise ValueError(f"{path}: (checkpoint, protocol, attack) {clash[0]} has several attack keys in the store; "
                         "fill the verdict file's attack_key column to say which one was read")
    keyed = frame.drop(columns=[c for c in ("attack_key",) if c in frame]).merge(
        keys, on=["checkpoint_hash", "protocol", "attack"], how="left")
    return keyed.assign(attack_key=given.where(given != "", keyed["attack_key"].fillna("")).to_numpy())


def _one_per_text(verdicts: pd.DataFrame) -> pd.DataFrame:
    key = [*VERDICT_KEY, "perturbed_text_b"]
    latest = (verdicts.reset_index().sort_values(["time", "index"], kind="stable")
              .drop_duplicates([*key, "reviewer"], keep="last"))
    votes = latest.assign(_accept=latest["verdict"] == "acceptable").groupby(key, sort=False)
    chosen = votes.tail(1).set_index(key)
    share = votes["_accept"].mean()
    chosen["verdict"] = np.where(share.reindex(chosen.index) >= 0.5, "acceptable", "reject")
    chosen["readers"] = votes.size().reindex(chosen.index)
    return chosen.reset_index().drop(columns=["index", "_accept"])


def join_verdicts(examples: pd.DataFrame, verdicts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(``examples`` with a ``verdict`` column on the successes a reader read, the verdicts that joined no success).

    The join is exact on ``VERDICT_KEY`` (and the second sentence where a verdict gives one): a
    verdict never reaches a text it was not given for.
    """
    rows = examples.assign(_b=examples["perturbed_text_b"].fillna("") if "perturbed_text_b" in examples else "")
    successes = rows[rows["status"] == SUCCEEDED]
    with_b = verdicts["perturbed_text_b"] != ""
    exact = verdicts[with_b].merge(successes[[*VERDICT_KEY, "_b"]], left_on=[*VERDICT_KEY, "perturbed_text_b"],
                                   right_on=[*VERDICT_KEY, "_b"], how="inner")
    first_only = verdicts[~with_b].merge(successes[VERDICT_KEY], on=VERDICT_KEY, how="inner")
    joined = pd.concat([exact, first_only], ignore_index=True).drop_duplicates(VERDICT_KEY)
    labelled = rows.merge(joined[[*VERDICT_KEY, "verdict"]], on=VERDICT_KEY, how="left")
    labelled.loc[labelled["status"] != SUCCEEDED, "verdict"] = np.nan
    matched = verdicts.set_index(VERDICT_KEY).index.isin(joined.set_index(VERDICT_KEY).index)
    return labelled.drop(columns="_b"), verdicts[~matched].reset_index(drop=True)


# ---------------------------------------------------------------- groups of checkpoints


def method_groups(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` (no union rows) with ``group``, ``row``, ``base`` and ``seed``: the method of each checkpoint.

    Where the store records the training config, a group is ``reproduce``'s method and mode
    ("BERT", "BERT+VDA (sharp)", with the settings that tell two configurations apart) and ``base``
    the method it is paired with (on ``base_configuration``, as ``reproduce`` pairs); else each checkpoint is
    its own group and nothing is paired. The Review tab samples per (group, attack key), and the
    acceptance is estimated per (group, attack key), so both read the groups from here.
    """
    rows = summary[summary["attack"].fillna("bert-attack") != UNION].copy() if "attack" in summary else summary.copy()
    if {"config.vda.lam", "config.seed"} <= set(rows.columns):
        configs = rows[[c for c in rows if c.startswith("config.")]].rename(columns=lambda c: c[len("config."):])
        rows["row"] = [row_name(config) for config in configs.to_dict("records")]
        rows["mode"] = rows["config.vda.mode"].where(rows["config.vda.lam"].astype(float) > 0, "-") \
            if "config.vda.mode" in rows else "-"
        rows["configuration"], rows["base_configuration"] = configurations(rows)
        if {"created", "epoch", "run_id"} <= set(rows.columns):
            rows = one_checkpoint_per_seed(rows)
        rows["group"] = [(row if mode == "-" else f"{row} ({mode})") + (f" [{setting}]" if setting else "")
                         for row, mode, setting in zip(rows["row"], rows["mode"], rows["configuration"])]
        rows["base"] = [row.split("+")[0] for row in rows["row"]]
        rows["seed"] = rows["config.seed"]
    else:
        rows["group"] = "checkpoint " + rows["checkpoint_hash"].str[:8]
        rows["row"] = rows["base"] = rows["group"]
        rows["configuration"] = rows["base_configuration"] = ""
        rows["seed"] = rows["checkpoint_hash"]
    return rows.reset_index(drop=True)


# ---------------------------------------------------------------- the estimator


@dataclass(frozen=True)
class AdjustedAccuracy:
    """Reader-adjusted Att Acc (or a paired Δ of it) with its interval, and the verdicts behind it."""

    value: float
    low: float
    high: float
    raw: float  # the same mean without the readers (Att Acc, or its Δ)
    read: int  # verdicts used (both methods' for a Δ)
    accepted: int
    num_seeds: int
    num_examples: int


@dataclass(frozen=True)
class Verdicts:
    """One (method, attack key)'s verdict sample: ``accepted`` of ``read`` successes, drawn from ``successes``."""

    accepted: int
    read: int
    successes: int

    @property
    def acceptance(self) -> float:
        return self.accepted / self.read if self.read else math.nan

    def centre(self, z: float) -> float:
        """The Agresti-Coull centre: the acceptance at which the variances are evaluated (never 0 or 1)."""
        return (self.accepted + z * z / 2) / (self.read + z * z)

    def variance(self, z: float) -> float:
        """Variance of the acceptance estimate, drawn without replacement from ``successes``."""
        centre = self.centre(z)
        correction = (self.successes - self.read) / (self.successes - 1) if self.successes > 1 else 0.0
        return centre * (1 - centre) / self.read * max(correction, 0.0)


def acceptance_interval(verdicts: Verdicts, confidence: float = 0.95) -> tuple[float, float, float]:
    """(acceptance, Wilson low, high) of the read successes: the acceptance rate of the attack's successes."""
    return (verdicts.acceptance, *wilson_interval(verdicts.accepted, verdicts.read, confidence))


def adjusted_accuracy(robust: np.ndarray, success: np.ndarray, verdicts: Verdicts,
                      confidence: float = 0.95) -> AdjustedAccuracy:
    """Reader-adjusted Att Acc of one method from its [seeds, examples] robust and success matrices (module doc)."""
    robust, success = _complete(robust, success)
    return _interval([(robust, success, verdicts, 1.0)], confidence)


def adjusted_difference(method: tuple[np.ndarray, np.ndarray, Verdicts], base: tuple[np.ndarray, np.ndarray, Verdicts],
                        confidence: float = 0.95) -> AdjustedAccuracy:
    """Adjusted Att Acc of ``method`` minus ``base``: rows are seed pairs, columns example ids, paired cell by cell.

    Only the example ids every pair has on both sides enter (``uncertainty.paired_differences``'s rule).
    """
    (mr, ms, mv), (br, bs, bv) = method, base
    keep = ~(np.isnan(mr) | np.isnan(ms) | np.isnan(br) | np.isnan(bs)).any(axis=0)
    return _interval([(mr[:, keep], ms[:, keep], mv, 1.0), (br[:, keep], bs[:, keep], bv, -1.0)], confidence)


def _complete(robust: np.ndarray, success: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    robust, success = np.asarray(robust, dtype=float), np.asarray(success, dtype=float)
    keep = ~(np.isnan(robust) | np.isnan(success)).any(axis=0)
    return robust[:, keep], success[:, keep]


def _interval(parts: Sequence[tuple[np.ndarray, np.ndarray, Verdicts, float]], confidence: float) -> AdjustedAccuracy:
    """The signed sum of the parts' adjusted means, its variance terms and their Satterthwaite t interval."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    num_seeds, num_examples = parts[0][0].shape
    if num_examples < 2 or any(v.read == 0 for *_, v, _ in parts):
        raw = sum(sign * float(r.mean()) for r, _, _, sign in parts) if num_examples else math.nan
        return AdjustedAccuracy(math.nan, math.nan, math.nan, raw, sum(v.read for *_, v, _ in parts),
                                sum(v.accepted for *_, v, _ in parts), num_seeds, num_examples)
    cells = sum(sign * (r + (1 - v.acceptance) * s) for r, s, v, sign in parts)
    example_variance, example_df = (_seed_level(cells) if num_seeds >= MIN_SEEDS else _example_level(cells))
    terms = [(example_variance, example_df)]
    for robust, success, verdicts, _ in parts:
        centre, share = verdicts.centre(z), float(success.mean())
        terms.append((centre * (1 - centre) * share / success.size, success.size - 1))  # each success's validity
        terms.append((share ** 2 * verdicts.variance(z), verdicts.read - 1))  # the verdict sample
    total = sum(v for v, _ in terms)
    df = total ** 2 / sum(v * v / d for v, d in terms if d > 0 and v > 0) if total > 0 else math.inf
    half = _t_quantile(0.5 + confidence / 2, df) * math.sqrt(total) if total > 0 else 0.0
    value = float(cells.mean())
    bounds = (0.0, 1.0) if len(parts) == 1 else (-1.0, 1.0)
    return AdjustedAccuracy(value, max(bounds[0], value - half), min(bounds[1], value + half),
                            sum(sign * float(r.mean()) for r, _, _, sign in parts),
                            sum(v.read for *_, v, _ in parts), sum(v.accepted for *_, v, _ in parts),
                            num_seeds, num_examples)


# ---------------------------------------------------------------- the table


def status_matrices(examples: pd.DataFrame, checkpoints: Sequence[str], attack_key: str,
                    ids: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """[checkpoint, example id] robust and success matrices of one attack key (NaN: not attacked), as
    ``uncertainty.robust_matrix`` reads the statuses, with the successes beside them."""
    rows = examples[(examples["attack_key"] == attack_key) & examples["checkpoint_hash"].isin(checkpoints)]
    table = rows.pivot(index="checkpoint_hash", columns="example_id", values="status").reindex(list(checkpoints))
    if ids is not None:
        table = table.reindex(columns=list(ids))
    status = table.to_numpy(dtype=object)
    attacked = pd.notna(status) & (status != SPARED)  # spared: this attack never ran on it (results.outcomes)
    robust = np.where(attacked, status == ROBUST_STATUS, np.nan).astype(float)
    success = np.where(attacked, status == SUCCEEDED, np.nan).astype(float)
    return robust, success


def reader_table(summary: pd.DataFrame, labelled: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per attack key and method: verdicts, acceptance [CI], Att Acc, reader-adjusted Att Acc [CI], paired Δ [CI].

    ``labelled`` is ``join_verdicts``'s first result. A method without verdicts shows its raw Att
    Acc and "no verdicts"; a Δ needs verdicts on both sides.
    """
    groups = method_groups(summary)
    records, samples = [], {}
    for (key, group), rows in groups.groupby(["attack_key", "group"], sort=False):
        checkpoints = list(rows["checkpoint_hash"])
        mine = labelled[(labelled["attack_key"] == key) & labelled["checkpoint_hash"].isin(checkpoints)]
        read = mine["verdict"].notna()
        sample = Verdicts(int((mine["verdict"] == "acceptable").sum()), int(read.sum()),
                          int((mine["status"] == SUCCEEDED).sum()))
        samples[(key, group)] = (rows, sample)
        robust, success = status_matrices(labelled, checkpoints, key)
        adjusted = adjusted_accuracy(robust, success, sample, confidence)
        acceptance, low, high = acceptance_interval(sample, confidence)
        records.append({
            "protocol": rows["protocol"].iloc[0], "attack": rows["attack"].iloc[0], "attack key": key[:8],
            "method": group, "checkpoints": len(checkpoints), "n": adjusted.num_examples,
            "read": f"{sample.accepted} of {sample.read} accepted" if sample.read else "no verdicts",
            "acceptance [95 % CI]": format_ci(acceptance, low, high) if sample.read else "",
            "Att Acc": format_number(adjusted.raw),
            "reader-adjusted Att Acc [95 % CI]": (format_ci(adjusted.value, adjusted.low, adjusted.high)
                                                  if sample.read else ""),
            "Δ adjusted vs base [95 % CI]": "",
        })
    for record, ((key, group), (rows, sample)) in zip(records, samples.items()):
        base_group = _base_group(rows, groups, key)
        if base_group is None or sample.read == 0 or samples[(key, base_group)][1].read == 0:
            continue
        base_rows, base_sample = samples[(key, base_group)]
        pairs = rows[["seed", "checkpoint_hash"]].merge(base_rows[["seed", "checkpoint_hash"]], on="seed",
                                                        suffixes=("", "_base"))
        if pairs.empty:
            continue
        ids = sorted(set(labelled.loc[labelled["attack_key"] == key, "example_id"]))
        method = (*status_matrices(labelled, list(pairs["checkpoint_hash"]), key, ids), sample)
        base = (*status_matrices(labelled, list(pairs["checkpoint_hash_base"]), key, ids), base_sample)
        delta = adjusted_difference(method, base, confidence)
        record["Δ adjusted vs base [95 % CI]"] = (f"{format_ci(delta.value, delta.low, delta.high, signed=True)} "
                                                  f"vs {base_group}, {len(pairs)} seed(s)")
    return pd.DataFrame(records)


def _base_group(rows: pd.DataFrame, groups: pd.DataFrame, key: str) -> str | None:
    """The group ``rows``' method is paired with (its base method under the same attack key), if any."""
    first = rows.iloc[0]
    if first["row"] == first["base"]:
        return None
    bases = groups[(groups["attack_key"] == key) & (groups["row"] == first["base"])
                   & (groups["base_configuration"] == first["base_configuration"])]["group"].unique()
    return str(bases[0]) if len(bases) == 1 else None


def format_reader_table(table: pd.DataFrame) -> str:
    """The table as aligned text for a terminal."""
    if table.empty:
        return "(no attacked checkpoints)"
    columns = list(table.columns)
    widths = [max(len(c), *(len(str(v)) for v in table[c])) for c in columns]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)) for row in table.itertuples(index=False)]
    return "\n".join(lines)
