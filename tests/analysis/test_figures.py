"""Figures 3 and 4 as measurements: points over seeds with intervals, Δ paired per epoch, the seed noise."""

import re

import pandas as pd
import pytest

from analysis.figures import epoch_points, inside_noise, plot_epochs, plot_sigma, points_table, sigma_points

N = 10  # examples per checkpoint


def _checkpoint(name, seed, robust, wrong=0, lam=0.0, epoch=1, created=100.0, **config):
    """(summary row, per-example rows) of one checkpoint: ``robust`` survive, ``wrong`` were wrong before the attack,
    the rest broken; e0, e1, ... in that order."""
    statuses = ["failed"] * robust + ["skipped"] * wrong + ["succeeded"] * (N - robust - wrong)
    examples = [{"checkpoint_hash": name, "attack_key": "key", "example_id": f"e{i}", "status": s}
                for i, s in enumerate(statuses)]
    row = {"checkpoint_hash": name, "attack_key": "key", "protocol": "vda-paper", "run_id": name.split("@")[0],
           "epoch": epoch, "created": created, "metrics.dev_acc": 0.8, "config.strategy.name": "plain",
           "config.vda.lam": lam, "config.vda.mode": "code", "config.vda.sigma": 0.05, "config.vda.k": 1,
           "config.seed": seed, "config.epochs": 1, "config.data.dataset": "mr", "clean_acc": 1 - wrong / N,
           "attack_acc": robust / N, "avg_queries": 20.0, "perturbed_pct": 10.0, "num_examples": N,
           **{f"config.{key.replace('__', '.')}": value for key, value in config.items()}}
    return row, examples


def _store(checkpoints):
    rows, examples = zip(*checkpoints)
    return pd.DataFrame(list(rows)), pd.DataFrame([e for part in examples for e in part])


def _epoch_store():
    """Plain and VDA over 3 epochs, 2 seeds: plain survives on ``epoch`` examples, VDA on ``epoch - 1`` more,
    so the gap grows by 0.1 an epoch; one example is wrong before the attack at epoch 1. Beside them a
    one-epoch run (no curve) and seed 1 of plain trained twice (the earlier run must not count)."""
    checkpoints = []
    for seed in (1, 2):
        for epoch in (1, 2, 3):
            wrong = int(epoch == 1)
            created = 100.0 + epoch  # each epoch's checkpoint is written when that epoch ends
            checkpoints.append(_checkpoint(f"plain-{seed}@{epoch}", seed, epoch, wrong, epoch=epoch, epochs=3,
                                           created=created))
            checkpoints.append(_checkpoint(f"vda-{seed}@{epoch}", seed, 2 * epoch - 1, wrong, lam=0.25, epoch=epoch,
                                           epochs=3, created=created))
            checkpoints.append(_checkpoint(f"old-plain-{seed}@{epoch}", seed, 9, epoch=epoch, epochs=3,
                                           created=50.0 + epoch) if seed == 1 else _checkpoint(
                f"one-epoch-{seed}@{epoch}", seed, 5, epoch=1))
    return _store(checkpoints)


def _value(cell):
    return float(re.match(r"(\S+) \[", cell).group(1))


def test_figure4_points_pair_each_epoch_with_the_base_at_that_epoch():
    points = epoch_points(*_epoch_store())
    assert sorted(points["Method"].unique()) == ["BERT", "BERT+VDA"]  # the one-epoch run is no curve
    assert len(points) == 6  # every epoch of both methods, not only the last-written checkpoint
    table = points_table(points, ["epoch"]).set_index(["Method", "epoch"])
    assert table.loc[("BERT", 1), "Att Acc"].startswith("0.100 [")  # the latest run of seed 1, not the old one
    assert [_value(table.loc[("BERT+VDA", e), "Δ Att Acc"]) for e in (1, 2, 3)] == [0.0, 0.1, 0.2]
    assert table.loc[("BERT", 2), "Δ Att Acc"] == "" and (table["seeds"] == 2).all()
    assert _value(table.loc[("BERT", 1), "Ori Acc"]) == 0.9 and _value(table.loc[("BERT", 3), "Ori Acc"]) == 1.0
    assert table.loc[("BERT+VDA", 3), "Δ Att Acc"].endswith("(2 seeds: example-level only, no seed variance)")


def test_no_run_attacked_at_two_epochs_gives_no_figure4(tmp_path):
    summary, examples = _store([_checkpoint("plain-1", 1, 3), _checkpoint("vda-1", 1, 4, lam=0.25)])
    points = epoch_points(summary, examples)
    assert points.empty and plot_epochs(points, tmp_path / "figure4.png") is None


def _sigma_store(vda_robust):
    """Plain (seeds survive on 1 and 3 of 10) and VDA at sigma 0.01 and 0.05 (k 1), ``vda_robust`` per sigma for
    both seeds; a VDA-eps run at one sigma beside them (a row, not a curve)."""
    checkpoints = [_checkpoint("plain-1", 1, 1), _checkpoint("plain-2", 2, 3),
                   _checkpoint("eps-1", 1, 9, lam=0.25, vda__noise=False)]
    for sigma, robust in vda_robust.items():
        checkpoints += [_checkpoint(f"vda-{sigma}-{seed}", seed, robust, lam=0.25, vda__sigma=sigma, vda__noise=True)
                        for seed in (1, 2)]
    return _store(checkpoints)


def test_figure3_points_and_the_seed_noise():
    points, noise = sigma_points(*_sigma_store({0.01: 2, 0.05: 5}))
    assert list(points["Method"].unique()) == ["BERT+VDA"]  # BERT+VDA-eps has one sigma: no curve
    table = points_table(points, ["sigma", "k"]).set_index("sigma")
    assert _value(table.loc[0.01, "Att Acc"]) == 0.2 and _value(table.loc[0.05, "Att Acc"]) == 0.5
    assert _value(table.loc[0.05, "Δ Att Acc"]) == pytest.approx(0.3)  # (5-1 + 5-3) / 2 of 10
    assert noise.iloc[0][["seeds", "low", "high"]].tolist() == [2, 0.1, 0.3]
    assert inside_noise(points, noise).startswith("1 of 2 points lie outside the seed noise (plain's seeds 0.100-0.300)")
    inside = sigma_points(*_sigma_store({0.01: 2, 0.05: 2}))
    assert inside_noise(*inside).startswith("every point lies inside the seed noise")


def test_the_figures_are_drawn(tmp_path):
    epochs = plot_epochs(epoch_points(*_epoch_store()), tmp_path / "figure4.png")
    sigma = plot_sigma(*sigma_points(*_sigma_store({0.01: 2, 0.05: 5})), tmp_path / "figure3.png")
    assert epochs.stat().st_size > 10_000 and sigma.stat().st_size > 10_000


def test_a_curve_still_being_attacked_prints_and_draws(tmp_path):
    """Mid-study: only plain's epochs are attacked (no Δ anywhere), then a VDA run whose plain is not."""
    summary, examples = _epoch_store()
    plain_only = summary["checkpoint_hash"].str.startswith("plain")
    points = epoch_points(summary[plain_only], examples)
    assert (points_table(points, ["epoch"])["Δ Att Acc"] == "").all()
    assert plot_epochs(points, tmp_path / "plain.png").is_file()
    vda_only = summary["checkpoint_hash"].str.startswith("vda")
    assert set(points_table(epoch_points(summary[vda_only], examples), ["epoch"])["Δ Att Acc"]) == {"no base"}


def test_the_seed_noise_is_the_points_own_protocols():
    """Plain's seeds under another protocol (here 0.9 and 1.0 under `strict`) are not this curve's seed noise."""
    summary, examples = _sigma_store({0.01: 2, 0.05: 5})
    plain = summary[summary["checkpoint_hash"].str.startswith("plain")]
    strict = plain.assign(checkpoint_hash=plain["checkpoint_hash"] + "-strict", attack_key="strict-key",
                          protocol="strict", attack_acc=[0.9, 1.0])
    rows = [{"checkpoint_hash": f"{c}-strict", "attack_key": "strict-key", "example_id": f"e{i}",
             "status": "failed" if i < robust else "succeeded"}
            for c, robust in (("plain-1", 9), ("plain-2", 10)) for i in range(N)]
    points, noise = sigma_points(pd.concat([summary, strict], ignore_index=True),
                                 pd.concat([examples, pd.DataFrame(rows)], ignore_index=True))
    assert len(noise) == 1 and noise.iloc[0]["high"] == 0.3  # strict has no VDA curve: no noise of its own
    assert inside_noise(points, noise).startswith("1 of 2 points lie outside the seed noise (plain's seeds 0.100-0.300)")
