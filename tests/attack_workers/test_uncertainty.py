"""Confidence intervals against cases computed by hand, and the pairing of store rows by example id."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from attack_workers.uncertainty import (bootstrap_mean, format_ci, format_number, paired_delta, paired_differences,
                                        robust_matrix, wilson_interval)


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


def test_equal_differences_give_a_zero_width_interval():
    assert bootstrap_mean(np.full((3, 7), 0.25)) == (0.25, 0.25, 0.25)
    delta = paired_delta(np.ones((2, 5)))
    assert (delta.delta, delta.low, delta.high, delta.num_seeds, delta.num_examples) == (1.0, 1.0, 1.0, 2, 5)


def test_bootstrap_over_two_examples_by_hand():
    # one seed, D = [0, 1]: a resample's mean is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4,
    # so its 2.5 % and 97.5 % quantiles are 0 and 1
    assert bootstrap_mean(np.array([[0.0, 1.0]])) == (0.5, 0.0, 1.0)


def test_resampling_seeds_carries_seed_to_seed_variation():
    # seed 1 gains on every example, seed 2 on none: an example resample alone would always give
    # 0.5; drawing both seeds the same gives 1 or 0 (probability 1/4 each)
    assert bootstrap_mean(np.array([[1.0, 1.0], [0.0, 0.0]])) == (0.5, 0.0, 1.0)


def test_interval_excludes_or_includes_zero():
    better = paired_delta(np.array([[1.0] * 8 + [0.0] * 2]))  # never worse, better on 8 of 10
    assert better.delta == 0.8 and 0 < better.low < 0.8 < better.high <= 1
    mixed = paired_delta(np.array([[1.0, -1.0] * 5]))  # as many gains as losses
    assert mixed.delta == 0 and mixed.low < 0 < mixed.high


def test_bootstrap_is_seeded_and_skips_missing_cells():
    matrix = np.array([[1.0, 0.0, np.nan], [1.0, 1.0, 0.0]])
    assert bootstrap_mean(matrix, seed=3) == bootstrap_mean(matrix, seed=3)
    assert bootstrap_mean(matrix)[0] == pytest.approx(3 / 5)  # over the 5 observed cells
    assert all(math.isnan(v) for v in bootstrap_mean(np.full((1, 2), np.nan)))


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
    assert paired_delta(differences).delta == pytest.approx(2 / 7)


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


def test_cells_render_the_same_everywhere():
    assert format_ci(0.21, 0.185, 0.2371) == "0.210 [0.185, 0.237]"
    assert format_ci(0.031, 0.010, 0.052, signed=True) == "+0.031 [+0.010, +0.052]"
    assert format_ci(math.nan, math.nan, math.nan) == "nan" and format_number(None) == "nan"
