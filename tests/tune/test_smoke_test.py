"""``tune/sweep.py --smoke-test``: every shipped config shrinks to a sweep that fits a small machine.

Checked without running a sweep: the shrunk config validates, one trial and one attack worker fit
the machine side by side, the scheduler accepts it, and every trial trains one short epoch.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tune.config import load_sweep, max_epochs
from tune.search import build_scheduler
from tune.sweep import fit_resources, main, smoke_test_overrides
from vda.config import ConfigError
from vda.dotted import merge, nest

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "tune" / "configs").glob("*.yaml"))
SWEEP_CONFIGS = [p for p in CONFIGS if p.name != "local_cluster.yaml"]
ADA_SETS = [Path(f"results/{name}/adversarial.jsonl") for name in ("ada-mr", "ada-mr-small", "ada-mr-study")]


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch):
    """Run from an empty directory holding the ADA sets the Table 5 presets train on."""
    monkeypatch.chdir(tmp_path)
    for ada_set in ADA_SETS:
        ada_set.parent.mkdir(parents=True)
        ada_set.write_text('{"id": "ada-1", "text_a": "a fine film", "label": "pos"}\n')
    return tmp_path


@pytest.mark.parametrize("machine", [(2.0, 0.0), (16.0, 1.0)], ids=["2-cpu", "16-cpu-1-gpu"])
@pytest.mark.parametrize("path", SWEEP_CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_shrinks_to_fit_the_machine(path, machine, in_tmp):
    cpus, gpus = machine
    spec = load_sweep(path, smoke_test_overrides(load_sweep(path), cpus, gpus))
    sweep = spec.sweep
    placement = fit_resources(spec, cpus, gpus, local=True)  # SweepError when nothing fits
    assert placement.max_concurrent_trials == 1 and sweep.num_samples == 1
    assert sweep.trial.cpus + sweep.attack.workers * sweep.attack.cpus <= cpus
    assert sweep.trial.gpus + sweep.attack.workers * sweep.attack.gpus <= gpus
    assert max_epochs(spec.fixed, spec.variants, spec.search) == 1
    assert [sweep.attack.examples(p) for p in sweep.attack.passes] == [4] * len(sweep.attack.passes)  # every pass
    if sweep.scheduler == "asha":
        build_scheduler(spec)  # ASHA asserts grace_period <= max_t
    for overrides in [{}, *spec.variants.values()]:
        trial = merge(spec.fixed, nest(overrides))
        assert (trial["max_steps"], trial["model"], trial["mlm"]) == (2, "default", "default")
        assert trial["data"]["max_train_examples"] == 32
    assert Path(sweep.output_dir).expanduser().resolve().parent.is_dir()  # a cluster mount is not assumed


@pytest.mark.parametrize("override, shrunk", [
    ("variants.long={epochs: 8, vda.lam: 0.5}", lambda spec: spec.variants["long"] == {"epochs": 1, "vda.lam": 0.5}),
    ("search.epochs={grid: [4, 8]}", lambda spec: spec.search["epochs"].values == (1,)),
])
def test_variants_and_searched_keys_that_the_smoke_test_sets_are_shrunk_too(in_tmp, override, shrunk):
    spec = load_sweep("default", [override])
    assert shrunk(load_sweep("default", [override, *smoke_test_overrides(spec, 2.0, 0.0)]))


def test_user_overrides_win_over_the_smoke_test(in_tmp):
    from tune.sweep import load_smoke_test

    spec = load_smoke_test("default", ["sweep.attack.num_examples=8"])
    assert spec.sweep.attack.num_examples == 8 and spec.sweep.name.endswith("-smoke")


def test_a_grace_period_longer_than_training_is_a_config_error():
    with pytest.raises(ConfigError, match=r"sweep.asha.grace_period: 3 is more than the 2 epoch\(s\)"):
        load_sweep("default", ["fixed.epochs=2", "sweep.scheduler=asha", "sweep.asha.grace_period=3"])


def test_cli_takes_overrides_around_options_and_names_their_source(capsys):
    assert main(["sweep.num_samples=0", "--quiet", "fixed.epochs=0", "--name", "x"]) == 2
    err = capsys.readouterr().err
    assert "default.yaml with command line overrides: 2 problem(s)" in err
    assert "sweep.num_samples: 0" in err and "fixed.epochs: 0" in err


def test_help_lists_allowed_values_with_their_meaning(capsys):
    from attack_workers.attack.protocols import PROTOCOLS

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "sweep.searcher:" in out and "optuna" in out and "sweep.objectives:" in out
    assert "vda.mode:" in out and "strategy.name:" in out
    assert all(p.description in out for p in PROTOCOLS.values())
