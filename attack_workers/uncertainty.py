"""95 % confidence intervals for the robustness numbers, and the one way every table prints them.

Two kinds of uncertainty sit in an attack accuracy. The attacked examples are a sample (1000 of
a dev set, 300 for long documents), so one checkpoint's Att Acc is a binomial proportion:
``wilson_interval``. A method's Att Acc also depends on its training seed, so comparing two
methods needs the seeds too: ``paired_delta`` bootstraps a per-(seed, example) matrix of paired
differences at both levels. Pairing matters: the attacked example ids are the same for every
checkpoint (one seeded sample), and two methods trained with the same seed share data order and
initialisation, so the paired difference cancels most of the noise the two rows have in common.

Everything here is numpy and pandas only, cheap to import from the store and the CLI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

ROBUST_STATUS = "failed"  # originally correct and survived the attack: what attack_acc = failed / n counts


def _checked(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence} must be in (0, 1)")
    return confidence


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of the proportion ``successes / n``; (NaN, NaN) when ``n == 0``.

    Why Wilson: an accuracy over n attacked examples is a binomial proportion, and attack
    accuracies sit near 0 (weak models, long documents) with n as small as 300. The textbook
    normal interval p ± z·sqrt(p(1-p)/n) collapses to zero width at p = 0 or 1 and leaves [0, 1]
    near them; Wilson's stays inside [0, 1], is never empty, and keeps close to its nominal
    coverage for small n. It needs only the counts, so every summary row gets one for free.
    """
    if n == 0:
        return math.nan, math.nan
    if not 0 <= successes <= n:
        raise ValueError(f"successes={successes} must be between 0 and n={n}")
    z2 = NormalDist().inv_cdf(0.5 + _checked(confidence) / 2) ** 2
    p = successes / n
    center = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = math.sqrt(z2) / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def bootstrap_mean(matrix: np.ndarray, num_resamples: int = 2000, confidence: float = 0.95,
                   seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high) of a [seeds, examples] matrix, by a two-level percentile bootstrap.

    Each resample draws the seeds (rows) with replacement and the example ids (columns) with
    replacement, one column draw shared by every row because the ids are the same across
    seeds. Both draws are multinomial count weights, so a resample's mean is
    ``w @ M @ v / (w @ observed @ v)`` and all of them are a few matrix products. NaN cells
    (an example one seed has not been attacked on yet) count as missing: the mean is over the
    observed cells, which with none missing is ``w^T M v / (S N)``. With one row this is the
    ordinary bootstrap over examples.
    """
    alpha = 1 - _checked(confidence)
    values = np.asarray(matrix, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"expected a [seeds, examples] matrix, got shape {values.shape}")
    observed = ~np.isnan(values)
    if not observed.any():
        return math.nan, math.nan, math.nan
    filled = np.where(observed, values, 0.0)
    num_seeds, num_examples = values.shape
    rng = np.random.default_rng(seed)
    seed_weights = rng.multinomial(num_seeds, np.full(num_seeds, 1 / num_seeds), size=num_resamples)
    example_weights = rng.multinomial(num_examples, np.full(num_examples, 1 / num_examples), size=num_resamples)
    totals = ((seed_weights @ filled) * example_weights).sum(axis=1)
    counts = ((seed_weights @ observed) * example_weights).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):  # a resample that drew only missing cells
        means = totals / counts
    low, high = np.nanquantile(means, [alpha / 2, 1 - alpha / 2])
    return float(filled.sum() / observed.sum()), float(low), float(high)


@dataclass(frozen=True)
class PairedDelta:
    """A difference of attack accuracies between two methods with its bootstrap CI."""

    delta: float  # mean of robust(method) - robust(base) over the paired (seed, example) cells
    low: float
    high: float
    num_seeds: int  # pairs of checkpoints (one per seed)
    num_examples: int  # example ids used (attacked for both sides of at least one pair)


def paired_delta(differences: np.ndarray, num_resamples: int = 2000, confidence: float = 0.95,
                 seed: int = 0) -> PairedDelta:
    """The mean of ``differences`` [seeds, examples] (NaN = not paired) and its two-level bootstrap CI."""
    values = np.asarray(differences, dtype=float)
    delta, low, high = bootstrap_mean(values, num_resamples, confidence, seed)
    return PairedDelta(delta, low, high, num_seeds=values.shape[0], num_examples=values.shape[1])


def robust_matrix(examples: pd.DataFrame, checkpoints: Sequence[str], attack_key: str | None = None) -> pd.DataFrame:
    """[checkpoint, example id] of 1.0 (survived the attack), 0.0 (did not) and NaN (not attacked).

    ``examples`` are the store's per-example rows (``checkpoint_hash``, ``attack_key``,
    ``example_id``, ``status``); rows come out in the order of ``checkpoints`` (repeats allowed).
    A checkpoint attacked under several attack keys (protocols, parameters) needs ``attack_key``.
    """
    rows = examples if attack_key is None else examples[examples["attack_key"] == attack_key]
    rows = rows[rows["checkpoint_hash"].isin(checkpoints)]
    keys = rows.groupby("checkpoint_hash")["attack_key"].nunique()
    if (keys > 1).any():
        raise ValueError(f"checkpoint(s) {sorted(keys[keys > 1].index)} have results under several attack keys; "
                         "choose one with attack_key")
    robust = rows.assign(robust=(rows["status"] == ROBUST_STATUS).astype(float))
    table = robust.pivot(index="checkpoint_hash", columns="example_id", values="robust")
    return table.reindex(list(checkpoints))


def paired_differences(examples: pd.DataFrame, pairs: Sequence[tuple[str, str]],
                       attack_key: str | None = None) -> np.ndarray:
    """D[pair, example] = robust(method) - robust(base) for (method, base) checkpoint pairs, one per seed.

    A cell is NaN unless both checkpoints of its pair were attacked on that example id, so only
    the ids a pair shares enter; ids no pair shares are dropped. A pair sharing no id at all has
    nothing to compare (different data, or a sample drawn with another seed): ValueError.
    """
    if not pairs:
        raise ValueError("no (method, base) checkpoint pairs to compare")
    methods, bases = zip(*pairs)
    method = robust_matrix(examples, methods, attack_key)
    base = robust_matrix(examples, bases, attack_key)
    ids = method.columns.union(base.columns)
    differences = method.reindex(columns=ids).to_numpy() - base.reindex(columns=ids).to_numpy()
    unpaired = [pair for pair, row in zip(pairs, differences) if np.isnan(row).all()]
    if unpaired:
        raise ValueError("no attacked example id is shared by method and base checkpoint(s) "
                         + ", ".join(f"{m} vs {b}" for m, b in unpaired)
                         + "; were they attacked on the same data split and example sample?")
    return differences[:, ~np.isnan(differences).all(axis=0)]


def format_number(value: float | None, signed: bool = False) -> str:
    """'0.210' ('+0.031' when ``signed``); 'nan' for a missing or undefined value."""
    if value is None or pd.isna(value):
        return "nan"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def format_ci(value: float | None, low: float | None, high: float | None, signed: bool = False) -> str:
    """'0.210 [0.185, 0.237]': the estimate and its interval, the cell every results table prints."""
    if value is None or pd.isna(value):
        return "nan"
    return f"{format_number(value, signed)} [{format_number(low, signed)}, {format_number(high, signed)}]"
