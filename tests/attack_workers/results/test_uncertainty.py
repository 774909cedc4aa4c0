"""Confidence intervals against cases computed by hand, and the pairing of store rows by example id."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from attack_workers.results.uncertainty import (MIN_SEEDS, MeanInterval, format_ci, format_interval, format_number,
                                        mean_interval, paired_differences, robust_matrix, wilson_interval)


def test_wilson_interval_by_hand():
    # 8/10, z = 1.959964, z^2 = 3.841459: center = (0.8 + 0.192073) / 1.384146 = 0.716738,
    # half = 1.959964 / 1.384146 * sqrt(0.016 + 0.009604) = 0.226578  ->  [0.4902, 0.9433]
    low, high = wilson_interval(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    # 5/10 is symmetric about 0.5: half = 1.959964 / 1.384146 * sqrt(0.025 + 0.009604) = 0.263407
    assert wilson_interval(5, 10) == pytest.approx((0.236593, 0.763407), abs=1e-6)


def test_wilson_interval_edges():
    low, high = wilson_interval(0, 10)  # the normal interval would be [0, 0]
    assert low == pytest.approx(0, abs=1e-12)
    assert high == pytest.approx(3.841459 / 13.841459, abs=1e-6)  # z^2 / (n + z^2)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    assert wilson_interval(8, 10, confidence=0.5)[1] < wilson_interval(8, 10)[1]
    with pytest.raises(ValueError, match="between 0 and n"):
        wilson_interval(11, 10)
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 10, confidence=95)


def test_equal_cells_give_a_zero_width_interval():
    interval = mean_interval(np.full((3, 7), 0.25))
    assert (interval.value, interval.low, interval.high, interval.num_seeds, interval.num_examples) == (
        0.25, 0.25, 0.25, 3, 7)


def test_one_seed_is_a_t_interval_over_examples_by_hand():
    # D = eight 1s and two 0s: mean 0.8, sample variance 0.8 * 0.2 * 10 / 9 = 0.177778, standard
    # error sqrt(0.177778 / 10) = 0.133333, t(0.975, 9 df) = 2.262157: half-width 0.301621, and a
    # mean of cells in [-1, 1] cannot exceed 1
    interval = mean_interval(np.array([[1.0] * 8 + [0.0] * 2]))
    assert (interval.value, interval.low, interval.high) == pytest.approx((0.8, 0.498379, 1.0), abs=1e-6)
    assert not interval.has_seed_variance
    accuracy = mean_interval(np.array([[1.0] * 2 + [0.0] * 8]), bounds=(0.0, 1.0))  # an accuracy stays >= 0
    assert (accuracy.low, accuracy.high) == pytest.approx((0.0, 0.501621), abs=1e-6)


def test_three_seeds_without_example_effects_are_a_t_interval_on_the_seed_means():
    # every example agrees within a seed: per-seed means 1, 0, 0.5, SD 0.5, standard error
    # 0.5 / sqrt(3) = 0.288675, t(0.975, 2 df) = 4.302653: half-width 1.242069
    interval = mean_interval(np.array([[1.0, 1.0], [0.0, 0.0], [0.5, 0.5]]), bounds=(-5.0, 5.0))
    assert (interval.value, interval.low, interval.high) == pytest.approx((0.5, -0.742069, 1.742069), abs=1e-6)
    assert interval.has_seed_variance


def test_the_shared_example_sample_widens_an_interval_the_seed_spread_cannot_see():
    # three seeds agree exactly (every per-seed mean is 0.5), yet the 10 examples are a sample:
    # the interval is the examples' t interval, not the zero width of the per-seed means
    row = [1.0] * 5 + [0.0] * 5
    interval = mean_interval(np.array([row, row, row]))
    assert interval.value == 0.5 and interval.low < 0.2 and interval.high > 0.8
    assert (interval.low, interval.high) == pytest.approx(
        (mean_interval(np.array([row])).low, mean_interval(np.array([row])).high))


def test_interval_excludes_or_includes_zero():
    better = mean_interval(np.array([[1.0] * 8 + [0.0] * 2] * 3))  # better on 8 of 10, every seed
    assert better.value == pytest.approx(0.8) and 0 < better.low < 0.8 < better.high
    mixed = mean_interval(np.array([[1.0, -1.0] * 5]))  # as many gains as losses
    assert mixed.value == 0 and mixed.low < 0 < mixed.high


def test_an_example_id_enters_only_where_every_seed_has_it():
    interval = mean_interval(np.array([[1.0, 0.0, np.nan], [1.0, 1.0, 0.0]]))
    assert interval.value == pytest.approx(3 / 4) and interval.num_examples == 2  # the third id: seed 1 lacks it
    assert all(math.isnan(v) for v in (mean_interval(np.full((1, 2), np.nan)).value,
                                       mean_interval(np.array([[1.0]])).low))
    with pytest.raises(ValueError, match="confidence"):
        mean_interval(np.ones((1, 3)), confidence=95)


def _two_level_bootstrap(differences: np.ndarray, rng: np.random.Generator, resamples: int = 2000) -> np.ndarray:
    """[replicate, (low, high)]: the percentile bootstrap ``mean_interval`` replaced, for the comparison only.

    As before (d2bc21d): each resample draws seeds and example ids with replacement as count
    weights (one example draw shared by every seed), the interval is its 2.5 and 97.5 percentiles.
    One set of 2000 resamples serves every replicate ([replicate, seed, example] at once), to keep
    the test at a few seconds.
    """
    replicates, num_seeds, num_examples = differences.shape
    seeds = rng.multinomial(num_seeds, np.full(num_seeds, 1 / num_seeds), size=resamples).astype(np.float32)
    examples = rng.multinomial(num_examples, np.full(num_examples, 1 / num_examples), size=resamples)
    flat = differences.reshape(-1, num_examples).astype(np.float32)  # one 2-d product: a batched one is 50x slower
    per_seed = (flat @ examples.T.astype(np.float32)).reshape(replicates, num_seeds, resamples)
    means = np.einsum("ksb,bs->kb", per_seed, seeds) / (num_seeds * num_examples)
    return np.quantile(means, [0.025, 0.975], axis=1).T


def _simulated_differences(num_seeds: int, rng: np.random.Generator, replicates: int = 400, num_examples: int = 300,
                           seed_sd: float = 0.04, delta: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(D [replicate, seed, example] of paired robust outcomes, each replicate's mean of its seeds' true Δ).

    A checkpoint's Att Acc is the plain model's 0.58 plus a seed effect (SD ``seed_sd``), plus the
    seed's own true Δ (``delta`` plus SD ``seed_sd``) for the method. An example survives when its
    rank is below the checkpoint's Att Acc; its rank is one draw shared by every checkpoint with
    probability 0.9, else the checkpoint's own draw. So every outcome is Bernoulli with exactly its
    checkpoint's Att Acc, outcomes of one example agree across checkpoints (the MR study's plain and
    sharp-VDA seed 1 differ on 34 of 300 examples; here about 40 of 300), and the population's Δ is ``delta``.
    """
    shape = (replicates, num_seeds, num_examples)
    plain = 0.58 + seed_sd * rng.standard_normal((replicates, num_seeds, 1))
    effects = delta + seed_sd * rng.standard_normal((replicates, num_seeds, 1))
    shared_rank = rng.random((replicates, 1, num_examples))

    def robust(accuracy: np.ndarray) -> np.ndarray:
        rank = np.where(rng.random(shape) < 0.9, shared_rank, rng.random(shape))
        return (rank < accuracy).astype(float)

    return robust(plain + effects) - robust(plain), effects.mean(axis=(1, 2))


def test_coverage_over_few_seeds():
    """Coverage of the population's Δ (0.05) by nominal 95 % intervals, 400 replicates per seed count.

    Run with -s for the table. From three seeds on the interval must cover at 92-98 %. Below three
    it cannot know the seed variance: it must say so in its cell, and cover what it claims, the
    mean Δ of its own seeds, at 92-98 %.
    """
    rng = np.random.default_rng(17)
    lines = ["seeds | two-level bootstrap (before) | mean_interval | mean_interval, of its seeds' own Δ | cell label",
             "---|---|---|---|---"]
    for num_seeds in (1, 2, 3, 5):
        differences, own_delta = _simulated_differences(num_seeds, rng)
        intervals = [mean_interval(d) for d in differences]
        low, high = np.array([i.low for i in intervals]), np.array([i.high for i in intervals])
        new, own = np.mean((low <= 0.05) & (0.05 <= high)), np.mean((low <= own_delta) & (own_delta <= high))
        old_low, old_high = _two_level_bootstrap(differences, rng).T
        old = np.mean((old_low <= 0.05) & (0.05 <= old_high))
        labels = {format_interval(i, signed=True).partition(" (")[2].rstrip(")") for i in intervals}
        own_cell = f"{own:.1%}" if num_seeds < MIN_SEEDS else "-"  # what an example-level interval claims
        lines.append(f"{num_seeds} | {old:.1%} | {new:.1%} | {own_cell} | {', '.join(sorted(labels)) or '-'}")
        if num_seeds >= MIN_SEEDS:
            assert 0.92 <= new <= 0.98, lines[-1]
            assert labels == {""}, lines[-1]  # nothing to qualify
        else:
            assert labels == {f"{num_seeds} seed{'s' * (num_seeds > 1)}: example-level only, no seed variance"}
            assert 0.92 <= own <= 0.98, lines[-1]
    print("\n" + "\n".join(lines))


def _simulated_accuracies(num_seeds: int, rng: np.random.Generator, seed_sd: float, replicates: int = 400,
                          num_examples: int = 300, accuracy: float = 0.58) -> np.ndarray:
    """Robust outcomes [replicate, seed, example] of one method: its Att Acc ``accuracy`` over the populations.

    Each seed's Att Acc is ``accuracy`` plus a seed effect (SD ``seed_sd``); an example survives when
    its rank, shared by every seed with probability 0.9 (some examples are hard for every model),
    is below it. The example term is then about accuracy (1 - accuracy) / N = 0.0008 in variance;
    the seed term seed_sd^2 / S.
    """
    shape = (replicates, num_seeds, num_examples)
    per_seed = accuracy + seed_sd * rng.standard_normal((replicates, num_seeds, 1))
    rank = np.where(rng.random(shape) < 0.9, rng.random((replicates, 1, num_examples)), rng.random(shape))
    return (rank < per_seed).astype(float)


def _seed_means_t(matrix: np.ndarray) -> tuple[float, float]:
    """The wrong estimator the module argues against: a t interval on the per-seed means alone."""
    from scipy.stats import t

    means = matrix.mean(axis=1)
    half = t.ppf(0.975, len(means) - 1) * means.std(ddof=1) / np.sqrt(len(means))
    return means.mean() - half, means.mean() + half


def _examples_only_t(matrix: np.ndarray) -> tuple[float, float]:
    """The other wrong estimator, from three seeds on: the example-level t interval, no seed variance."""
    from scipy.stats import t

    means = matrix.mean(axis=0)
    half = t.ppf(0.975, len(means) - 1) * means.std(ddof=1) / np.sqrt(len(means))
    return means.mean() - half, means.mean() + half


@pytest.mark.parametrize("setting, seed_sd", [("example term dominates", 0.005), ("seed term dominates", 0.08)])
def test_attack_accuracy_coverage_where_one_term_dominates(setting, seed_sd):
    """Att Acc matrices at three seeds (issue 29.9): ``mean_interval`` covers the population's Att Acc
    at 92-99 % in both settings (95 % and 98 % with this generator's seed), while each one-level
    estimator fails the setting it ignores.

    Where the example sample dominates (seed SD 0.005), the per-seed means agree and their t
    interval is far too narrow; where the seeds dominate (seed SD 0.08, 3 seeds), the example-level
    interval is.
    """
    rng = np.random.default_rng(29)
    matrices = _simulated_accuracies(3, rng, seed_sd)

    def coverage(estimator) -> float:
        bounds = np.array([estimator(m) for m in matrices])
        return float(np.mean((bounds[:, 0] <= 0.58) & (0.58 <= bounds[:, 1])))

    ours = coverage(lambda m: (lambda i: (i.low, i.high))(mean_interval(m, bounds=(0.0, 1.0))))
    seeds_only, examples_only = coverage(_seed_means_t), coverage(_examples_only_t)
    line = f"{setting}: mean_interval {ours:.1%}, per-seed means t {seeds_only:.1%}, examples only {examples_only:.1%}"
    assert 0.92 <= ours <= 0.99, line  # a little over where the cells' own noise is counted twice (module doc)
    wrong = seeds_only if seed_sd < 0.01 else examples_only
    assert wrong < 0.85, line
    print("\n" + line)


def _rows(checkpoint: str, statuses: str, ids: str = "abcdef", key: str = "k") -> list[dict[str, str]]:
    """s=succeeded, f=failed (robust), k=skipped, one per example id."""
    names = {"s": "succeeded", "f": "failed", "k": "skipped"}
    return [{"checkpoint_hash": checkpoint, "attack_key": key, "example_id": i, "status": names[s]}
            for i, s in zip(ids, statuses)]


@pytest.fixture()
def examples() -> pd.DataFrame:
    return pd.DataFrame(_rows("base1", "sfsk") + _rows("vda1", "ffsk")  # seed 1: vda gains on a
                        + _rows("base2", "ssf") + _rows("vda2", "fsfs", ids="abcd")  # seed 2: d only for vda
                        + _rows("other", "ff", ids="xy"))


def test_robust_matrix_marks_survivors_and_missing_ids(examples):
    matrix = robust_matrix(examples, ["vda2", "base1"])
    assert list(matrix.index) == ["vda2", "base1"] and list(matrix.columns) == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(matrix.to_numpy(), [[1, 0, 1, 0], [0, 1, 0, 0]])
    assert math.isnan(robust_matrix(examples, ["base2", "vda2"]).loc["base2", "d"])  # base2 was not attacked on d


def test_differences_are_paired_by_seed_and_example_id(examples):
    differences = paired_differences(examples, [("vda1", "base1"), ("vda2", "base2")])
    # seed 1: a 1-0, b 1-1, c 0-0, d 0-0 (both skipped);  seed 2: a 1-0, b 0-0, c 1-1, d unpaired
    np.testing.assert_array_equal(differences, [[1, 0, 0, 0], [1, 0, 0, np.nan]])
    assert mean_interval(differences).value == pytest.approx(2 / 6)  # d: paired for seed 1 only, left out


def test_a_pair_without_shared_ids_is_named(examples):
    with pytest.raises(ValueError, match="other vs base1"):
        paired_differences(examples, [("vda1", "base1"), ("other", "base1")])
    with pytest.raises(ValueError, match="no attacked example id"):
        paired_differences(examples, [("vda1", "never-attacked")])


def test_several_attack_keys_need_a_choice(examples):
    both = pd.concat([examples, pd.DataFrame(_rows("vda1", "ssss", key="k2"))])
    with pytest.raises(ValueError, match="several attack keys"):
        robust_matrix(both, ["vda1"])
    assert robust_matrix(both, ["vda1"], attack_key="k2").sum(axis=1).iloc[0] == 0


def test_a_method_and_base_attacked_under_different_keys_are_not_paired(examples):
    moved = examples.assign(attack_key=examples["attack_key"].where(examples["checkpoint_hash"] != "vda1", "k2"))
    with pytest.raises(ValueError, match="method checkpoints were attacked under attack key.s. k2 and the base "
                                         "checkpoints under k:"):
        paired_differences(moved, [("vda1", "base1")])
    with pytest.raises(ValueError, match="k, k2 and the base"):  # one seed's pair under another key
        paired_differences(moved, [("vda1", "base1"), ("vda2", "base2")])
    assert paired_differences(moved, [("vda2", "base2")]).shape == (1, 3)  # one key: paired as before


def test_cells_render_the_same_everywhere():
    assert format_ci(0.21, 0.185, 0.2371) == "0.210 [0.185, 0.237]"
    assert format_ci(0.031, 0.010, 0.052, signed=True) == "+0.031 [+0.010, +0.052]"
    assert format_ci(math.nan, math.nan, math.nan) == "nan" and format_number(None) == "nan"


def _interval(num_seeds: int, value: float = 0.05) -> MeanInterval:
    return MeanInterval(value, 0.013, 0.087, num_seeds=num_seeds, num_examples=300)


def test_intervals_without_seed_variance_say_so_in_their_cell():
    assert format_interval(_interval(1), signed=True) == (
        "+0.050 [+0.013, +0.087] (1 seed: example-level only, no seed variance)")
    assert format_interval(_interval(2)) == "0.050 [0.013, 0.087] (2 seeds: example-level only, no seed variance)"
    assert format_interval(_interval(3)) == "0.050 [0.013, 0.087]"


def test_a_delta_over_fewer_seeds_than_its_row_says_how_many_were_paired():
    assert format_interval(_interval(2), seeds_of=3) == (
        "0.050 [0.013, 0.087] (2 of 3 seeds paired: example-level only, no seed variance)")
    assert format_interval(_interval(3), seeds_of=4) == "0.050 [0.013, 0.087] (3 of 4 seeds paired)"
    assert format_interval(_interval(3), seeds_of=3) == "0.050 [0.013, 0.087]"
    assert format_interval(_interval(1, value=math.nan)) == "nan"
