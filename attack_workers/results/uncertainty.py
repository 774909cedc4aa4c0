"""95 % confidence intervals for the robustness numbers, and the one way every table prints them.

Two kinds of uncertainty sit in an attack accuracy. The attacked examples are a sample (1000 of
a dev set, 300 for long documents), so one checkpoint's Att Acc is a binomial proportion:
``wilson_interval``. A method's Att Acc also depends on its training seed, so a method's mean
over seeds, and the difference between two methods, need the seeds too: ``mean_interval`` of a
[seeds, examples] matrix (robust outcomes, or their paired differences from
``paired_differences``). Pairing matters: the attacked example ids are the same for every
checkpoint (one seeded sample), and two methods trained with the same seed share data order and
initialisation, so the paired difference cancels most of the noise the two rows have in common.

How ``mean_interval`` gets its width, and why not a bootstrap. The matrix is a two-way crossed
layout: a cell is mean + seed effect + example effect + the cell's own noise, so the grand mean's
variance is sigma_seed^2 / S + sigma_example^2 / N + sigma_cell^2 / (S N). Both levels are needed.
The spread of the per-seed means carries the seed effects and the cells' noise but not the
example effect: every seed is attacked on the same example ids, so the example sample moves every
seed's mean together, and a t interval on the per-seed means alone misses it. The estimate is
therefore var(per-seed means) / S + var(per-example means) / N. It counts the cells' noise twice
(sigma_cell^2 / (S N) too much), the price of a variance that is never negative and never below
either level alone; the ANOVA estimate that subtracts the residual mean square is unbiased but
is truncated at zero seed variance in about one draw in five at S = 3, and then under-covers
(92.7 % at S = 3 in the simulation below, 4000 replicates; this one 94.0 %). With S = 3 or more
seeds the interval is t-based with Satterthwaite's degrees of freedom: about S - 1 where the
seeds dominate (t = 4.3 at S = 3, not 1.96), about N - 1 where the examples do. The two-level
percentile bootstrap this replaced (seeds and examples resampled) is a large-sample method: with
S = 2 its seed resampling has three outcomes and with S = 1 none, so it under-covers where the
studies sit. Below ``MIN_SEEDS`` seeds the seed variance has 0 or 1 degree of freedom, too few
to estimate (a 1-df t interval is 12.7 standard errors wide), so the interval is example-level
only: the t interval over examples of the per-example means. It covers these checkpoints'
difference on the example population, and says nothing of other seeds; ``format_interval``
writes that into the cell: "(2 seeds: example-level only, no seed variance)".

Coverage of the population's Δ by a nominal 95 % interval, simulated
(``tests/attack_workers/results/test_uncertainty.py::test_coverage_over_few_seeds``, which prints this
table with -s: 400 replicates of N = 300 paired examples, seed SD 0.04 in Att Acc and 0.04 in
the per-seed Δ, one example's outcomes agreeing across checkpoints about as often as in the MR
study):

    seeds | two-level bootstrap (before) | mean_interval | of its own seeds' Δ | cell
    1     | 59.8 %                       | 60.5 %        | 93.5 %              | labelled example-level only
    2     | 87.0 %                       | 67.5 %        | 93.2 %              | labelled example-level only
    3     | 91.8 %                       | 94.2 %        |                     |
    5     | 96.5 %                       | 96.5 %        |                     |

With 4000 replicates: 94.0 % at S = 3, 95.6 % at 4, 96.1 % at 5, 96.5 % at 10. Below three seeds
the example-level interval covers what it claims, its own seeds' mean Δ, and the population's no
better than the bootstrap did (worse at S = 2, where the bootstrap's seed resampling had some
width): hence the label in the cell.

Everything here is numpy and pandas, cheap to import from the store and the CLI; the t quantile
imports scipy when an interval is computed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from attack_workers.results.outcomes import robust_outcomes


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


MIN_SEEDS = 3  # fewer seeds: the interval is example-level only (no seed variance; see the module doc)


@dataclass(frozen=True)
class MeanInterval:
    """A mean over a [seeds, examples] matrix with its CI, and what that interval accounts for."""

    value: float  # mean over the cells of the example ids every seed has
    low: float
    high: float
    num_seeds: int  # rows: checkpoints, one per seed (pairs of checkpoints for a Δ)
    num_examples: int  # example ids every row has: the columns the mean and interval use

    @property
    def has_seed_variance(self) -> bool:
        """False below ``MIN_SEEDS`` seeds: the interval is over examples only."""
        return self.num_seeds >= MIN_SEEDS


def mean_interval(matrix: np.ndarray, confidence: float = 0.95,
                  bounds: tuple[float, float] = (-1.0, 1.0)) -> MeanInterval:
    """The mean of ``matrix`` [seeds, examples] and its t interval, over seeds and examples (module doc).

    NaN cells (an example one seed has not been attacked on yet, or a difference one side lacks)
    drop their whole column: every seed is then measured on the same example ids, which is what
    makes the two-way layout and its variance hold. ``num_examples`` says how many were left.
    ``bounds`` is the range a cell can take, so the mean's too: the interval is clipped to it
    (-1 to 1 for paired differences; pass (0, 1) for robust outcomes, an accuracy).
    """
    alpha = 1 - _checked(confidence)
    values = np.asarray(matrix, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"expected a [seeds, examples] matrix, got shape {values.shape}")
    values = values[:, ~np.isnan(values).any(axis=0)]
    num_seeds, num_examples = values.shape
    if num_seeds == 0 or num_examples < 2:  # no mean, or no spread to measure
        mean = float(values.mean()) if values.size else math.nan
        return MeanInterval(mean, math.nan, math.nan, num_seeds, num_examples)
    variance, df = _seed_level(values) if num_seeds >= MIN_SEEDS else _example_level(values)
    half = _t_quantile(1 - alpha / 2, df) * math.sqrt(variance) if variance > 0 else 0.0
    mean = float(values.mean())
    return MeanInterval(mean, max(bounds[0], mean - half), min(bounds[1], mean + half), num_seeds, num_examples)


def _example_level(values: np.ndarray) -> tuple[float, float]:
    """(variance of the grand mean, degrees of freedom) with the seeds held fixed: over examples only."""
    num_examples = values.shape[1]
    return float(values.mean(axis=0).var(ddof=1)) / num_examples, num_examples - 1


def _seed_level(values: np.ndarray) -> tuple[float, float]:
    """(variance of the grand mean, Satterthwaite degrees of freedom) over seeds and examples.

    The per-seed means' variance / S (seed effects and the cells' own noise) plus the per-example
    means' variance / N (the example sample every seed shares); see the module doc.
    """
    num_seeds, num_examples = values.shape
    terms = [(float(values.mean(axis=1).var(ddof=1)) / num_seeds, num_seeds - 1),
             (float(values.mean(axis=0).var(ddof=1)) / num_examples, num_examples - 1)]
    total = sum(part for part, _ in terms)
    if total == 0:  # every cell equal: no width, whatever the degrees of freedom
        return 0.0, math.inf
    return total, total ** 2 / sum(part ** 2 / df for part, df in terms)


def _t_quantile(probability: float, df: float) -> float:
    """Student's t quantile at a real-valued ``df`` (Satterthwaite's need not be an integer)."""
    from scipy.special import stdtrit  # lazy: importing scipy is paid only where an interval is computed

    return float(stdtrit(df, probability))


def robust_matrix(examples: pd.DataFrame, checkpoints: Sequence[str], attack_key: str | None = None,
                  outcome: Callable[[pd.Series], pd.Series] = robust_outcomes) -> pd.DataFrame:
    """[checkpoint, example id] of 1.0 (survived the attack), 0.0 (did not) and NaN (not attacked: no row,
    or ``spared``; ``attack_workers.results.outcomes.robust_outcomes``, the summary's definition too).
    ``outcome=clean_outcomes`` gives the same matrix of clean predictions (Ori Acc per example).

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
    robust = rows.assign(robust=outcome(rows["status"]))
    table = robust.pivot(index="checkpoint_hash", columns="example_id", values="robust")
    return table.reindex(list(checkpoints))


def paired_differences(examples: pd.DataFrame, pairs: Sequence[tuple[str, str]],
                       attack_key: str | None = None) -> np.ndarray:
    """D[pair, example] = robust(method) - robust(base) for (method, base) checkpoint pairs, one per seed.

    A cell is NaN unless both checkpoints of its pair were attacked on that example id, so only
    the ids a pair shares enter; ids no pair shares are dropped. A pair sharing no id at all has
    nothing to compare (different data, or a sample drawn with another seed): ValueError. So is a
    comparison across attack keys when ``attack_key`` is None: another protocol, lexicon or
    parameter set is another measurement, and its difference would be the attack's, not the method's.
    """
    if not pairs:
        raise ValueError("no (method, base) checkpoint pairs to compare")
    methods, bases = zip(*pairs)
    method = robust_matrix(examples, methods, attack_key)
    base = robust_matrix(examples, bases, attack_key)
    if attack_key is None:
        _require_one_key(examples, methods, bases)
    ids = method.columns.union(base.columns)
    differences = method.reindex(columns=ids).to_numpy() - base.reindex(columns=ids).to_numpy()
    unpaired = [pair for pair, row in zip(pairs, differences) if np.isnan(row).all()]
    if unpaired:
        raise ValueError("no attacked example id is shared by method and base checkpoint(s) "
                         + ", ".join(f"{m} vs {b}" for m, b in unpaired)
                         + "; were they attacked on the same data split and example sample?")
    return differences[:, ~np.isnan(differences).all(axis=0)]


def _require_one_key(examples: pd.DataFrame, methods: Sequence[str], bases: Sequence[str]) -> None:
    """ValueError naming the keys when the method and base checkpoints were not all attacked under one."""
    def keys(checkpoints: Sequence[str]) -> list[str]:
        return sorted(examples.loc[examples["checkpoint_hash"].isin(checkpoints), "attack_key"].unique())

    method_keys, base_keys = keys(methods), keys(bases)
    if len(set(method_keys) | set(base_keys)) > 1:
        raise ValueError(f"the method checkpoints were attacked under attack key(s) {', '.join(method_keys)} and "
                         f"the base checkpoints under {', '.join(base_keys)}: a difference across keys compares "
                         "two attacks; pass attack_key to compare under one")


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


def format_interval(interval: MeanInterval, signed: bool = False, seeds_of: int | None = None) -> str:
    """The cell of a mean over seeds (a method's Att Acc, a paired Δ), labelled where it is less than it looks.

    '0.578 [0.521, 0.634]' with ``MIN_SEEDS`` seeds or more. Fewer, and the cell itself says that the
    interval leaves the seed variance out: '+0.050 [+0.013, +0.087] (1 seed: example-level only, no
    seed variance)'. ``seeds_of`` is the row's own seed count where a Δ could pair only some of
    them: '(2 of 3 seeds paired)', so a Δ over fewer seeds than the row's Att Acc never looks like both.
    """
    cell = format_ci(interval.value, interval.low, interval.high, signed)
    if pd.isna(interval.value):
        return cell
    seeds = interval.num_seeds
    some_paired = seeds_of is not None and seeds_of > seeds
    count = f"{seeds} of {seeds_of} seeds paired" if some_paired else f"{seeds} seed{'s' if seeds != 1 else ''}"
    if not interval.has_seed_variance:
        return f"{cell} ({count}: example-level only, no seed variance)"
    return f"{cell} ({count})" if some_paired else cell
