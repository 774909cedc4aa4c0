"""Sweep YAML validation: every shipped config loads; bad input fails at once, naming key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tune.config import load_sweep, sweep_from_dict
from vda.config import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "tune" / "configs").glob("*.yaml"))
SWEEP_CONFIGS = [p for p in CONFIGS if p.name != "local_cluster.yaml"]  # that one is a Ray cluster config
# what the Table 5 presets train their +ADA rows on
ADA_SETS = [Path(f"results/{name}/adversarial.jsonl") for name in ("ada-mr", "ada-mr-small", "ada-mr-study")]


@pytest.mark.parametrize("path", SWEEP_CONFIGS, ids=lambda p: p.name)
def test_every_shipped_sweep_config_is_valid(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for ada_set in ADA_SETS:
        ada_set.parent.mkdir(parents=True)
        ada_set.write_text('{"id": "ada-1", "text_a": "a fine film", "label": "pos"}\n')
    spec = load_sweep(path)
    assert spec.search or spec.variants


def test_a_missing_ada_set_stops_the_sweep_before_it_starts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_sweep("paper_table5_mr")
    problems = "\n".join(err.value.problems)
    assert "variants.BERT+ADA: data.extra_train_file: 'results/ada-mr/adversarial.jsonl' does not exist" in problems
    assert "python -m attack_workers.ada" in problems


def test_relative_paths_become_absolute_and_links_are_followed(tmp_path, monkeypatch):
    """Trials run in Ray's trial directory: they must get paths that do not depend on the launch directory."""
    monkeypatch.chdir(tmp_path)
    keyed = tmp_path / "results" / "ada-mr" / "0123abcd" / "adversarial.jsonl"
    keyed.parent.mkdir(parents=True)
    keyed.write_text('{"id": "ada-1", "text_a": "a fine film", "label": "pos"}\n')
    ADA_SETS[0].symlink_to(Path("0123abcd") / "adversarial.jsonl")
    (tmp_path / "reviews.csv").write_text("text,label\ngood,pos\nbad,neg\n")
    spec = load_sweep("paper_table5_mr", ["fixed.data.dataset=reviews.csv"])
    assert spec.fixed["data"]["dataset"] == str(tmp_path / "reviews.csv")
    assert spec.variants["BERT+ADA"]["data.extra_train_file"] == str(keyed)
    assert "data.extra_train_file" not in spec.variants["BERT"]


def test_default_config_compares_a_baseline_with_vda_under_the_paper_and_the_strict_protocol():
    """Issue 29.12: the paper's number (vda-paper, BERT-Attack) next to the readable one (strict, three attacks)."""
    spec = load_sweep()
    lams = [v.get("vda.lam", spec.fixed["vda"]["lam"]) for v in spec.variants.values()]
    assert 0.0 in lams and any(lam > 0 for lam in lams)
    attack = spec.sweep.attack
    assert [(p.protocol, p.attacks) for p in attack.passes] == [
        ("vda-paper", ("bert-attack",)), ("strict", ("bert-attack", "textfooler", "pwws"))]
    assert spec.fixed["data"]["dataset"] == "mr"
    assert attack.num_examples >= 200  # paired differences need enough shared examples
    assert 0 < attack.examples(attack.passes[1]) <= attack.num_examples  # a prefix of the same sample
    assert attack.objective_pass.protocol == "strict"


def test_attack_passes_and_the_single_pass_shorthand_give_the_same_sweep(tmp_path, make_sweep):
    shorthand = make_sweep(tmp_path, "default")
    shorthand["sweep"]["attack"].update(protocol="strict", attacks="bert-attack,pwws")
    listed = make_sweep(tmp_path, "default")
    listed["sweep"]["attack"]["passes"] = [{"protocol": "strict", "attacks": ["bert-attack", "pwws"]}]
    assert sweep_from_dict(shorthand).sweep == sweep_from_dict(listed).sweep

    two = make_sweep(tmp_path, "default")
    two["sweep"]["attack"].update(passes=["vda-paper", {"protocol": "strict", "attacks": ["pwws"], "num_examples": 2}],
                                  objective="strict")
    attack = sweep_from_dict(two).sweep.attack
    assert [(p.protocol, p.attacks, attack.examples(p)) for p in attack.passes] == [
        ("vda-paper", ("bert-attack",), 4), ("strict", ("pwws",), 2)]
    assert attack.objective_pass.protocol == "strict"
    assert sweep_from_dict(make_sweep(tmp_path, "default")).sweep.attack.objective_pass.protocol == "vda-paper"
    saved = sweep_from_dict(two).to_dict()  # what sweep.yaml holds, and what --resume reads back
    assert sweep_from_dict(saved).sweep == sweep_from_dict(two).sweep


@pytest.mark.parametrize("attack, fragment", [
    ({"passes": [{"protocol": "strict"}, {"protocol": "vda-papr"}]},
     "sweep.attack.passes[1].protocol: 'vda-papr' is unknown; did you mean 'vda-paper'?"),
    ({"passes": [{"protocol": "strict", "attacks": []}]},
     "sweep.attack.passes[0].attacks: no attack given"),
    ({"passes": [{"protocol": "strict", "attacks": ["bert-attack"]}, {"protocol": "strict", "attacks": ["pwws"]}]},
     "sweep.attack.passes[1]: protocol 'strict' is already attacked by sweep.attack.passes[0]"),
    ({"passes": []}, "sweep.attack.passes: []: expected a non-empty list of passes"),
    ({"passes": [{"attacks": ["pwws"]}]}, "sweep.attack.passes[0].protocol: missing"),
    ({"passes": [{"protocol": "strict", "attack": ["pwws"]}]},
     "sweep.attack.passes[0].attack: unknown key; did you mean sweep.attack.passes[0].'attacks'?"),
    ({"passes": [{"protocol": "strict", "attacks": ["pwws"], "skip_broken": True}]},
     "sweep.attack.passes[0].skip_broken: needs two or more"),
    ({"passes": ["strict"], "protocol": "vda-paper"},
     "sweep.attack.protocol and sweep.attack.passes are both given"),
    ({"passes": ["vda-paper", "strict"], "objective": "textattack"},
     "sweep.attack.objective: 'textattack' is unknown; known: vda-paper, strict"),
    ({"objective": "strict"}, "sweep.attack.objective: 'strict' is unknown; known: vda-paper"),
    ({"protocol": "strct"}, "sweep.attack.protocol: 'strct' is unknown; did you mean 'strict'?"),
])
def test_bad_attack_passes_name_the_key(tmp_path, make_sweep, attack, fragment):
    raw = make_sweep(tmp_path, "default")
    raw["sweep"]["attack"].update(attack)
    assert fragment in _problems(raw)


def _problems(raw):
    with pytest.raises(ConfigError) as err:
        sweep_from_dict(raw, "test.yaml")
    return "\n".join(err.value.problems)


@pytest.mark.parametrize("change, fragment", [
    (lambda r: r["search"].update({"vda.sigmaa": {"grid": [0.1]}}), "vda.sigmaa: unknown key; did you mean vda.'sigma'?"),
    (lambda r: r["search"].update({"vda.k": {"grid": [0, 2]}}), "search.vda.k=0: vda.k: 0 must be in [1, 64]"),
    (lambda r: r["search"].update({"vda.sigma": {"grid": [-0.1]}}), "search.vda.sigma=-0.1: vda.sigma: -0.1 must be a number >= 0"),
    (lambda r: r["search"].update({"lr": {"loguniform": [0.0, 1e-3]}}), "search.lr: loguniform [0.0, 0.001]: bounds must be > 0"),
    (lambda r: r["search"].update({"vda.lam": {"uniform": [1.0, 0.5]}}), "low must be below high"),
    (lambda r: r["search"].update({"vda.lam": 0.5}), "search.vda.lam: 0.5 is not a distribution"),
    (lambda r: r["search"].update({"vda.lam": {"normal": [0, 1]}}), "distribution 'normal' is unknown"),
    (lambda r: r["variants"].update({"bad": {"vda.k": 0}}), "variants.bad: vda.k: 0 must be in [1, 64]"),
    (lambda r: r["fixed"].update({"epochs": 0}), "fixed.epochs: 0 must be a number >= 1"),
    (lambda r: r["sweep"].update({"searcher": "optuna_tpe"}), "sweep.searcher: 'optuna_tpe' is unknown; did you mean 'optuna'?"),
    (lambda r: r["sweep"].update({"num_sampels": 3}), "sweep.num_sampels: unknown key; did you mean sweep.'num_samples'?"),
    (lambda r: r["sweep"]["attack"].update({"checkpoints": "all"}), "sweep.attack.checkpoints: 'all' is unknown"),
    (lambda r: r["sweep"]["attack"].update({"enabled": False}), "need attack results but sweep.attack.enabled is false"),
    (lambda r: r["sweep"].update({"objectives": ["robustness"]}), "sweep.objectives: 'robustness' is unknown"),
    (lambda r: r["sweep"].update({"trial": {"cpus": 0}}), "sweep.trial.cpus: 0.0 must be > 0"),
    (lambda r: r.update({"serach": {}}), "block: 'serach' is unknown; did you mean 'search'?"),
])
def test_bad_sweep_configs_name_the_key(tmp_path, make_sweep, change, fragment):
    raw = make_sweep(tmp_path, "default")
    raw["search"] = {}
    change(raw)
    assert fragment in _problems(raw)


def test_optuna_rejects_grids_and_all_problems_come_at_once(tmp_path, make_sweep):
    raw = make_sweep(tmp_path, "default", searcher="optuna")
    raw["search"] = {"vda.sigma": {"grid": [0.5, 1.0]}, "vda.k": {"randint": [0, 3]}}
    problems = _problems(raw)
    assert "vda.sigma use 'grid', which Optuna cannot sample; use 'choice'" in problems
    assert "search.vda.k=0: vda.k: 0 must be in [1, 64]" in problems


def test_a_key_set_by_a_variant_cannot_also_be_searched(tmp_path, make_sweep):
    raw = make_sweep(tmp_path, "default")
    raw["search"] = {"vda.lam": {"grid": [0.1, 1.0]}}
    assert "variants.baseline: vda.lam also searched" in _problems(raw)


def test_overrides_reach_every_block(tmp_path):
    spec = load_sweep(None, ["sweep.num_samples=3", "fixed.epochs=1", "search.lr={grid: [5.0e-5, 1.0e-4]}",
                             "variants.ce={vda.loss: ce}"])
    assert spec.sweep.num_samples == 3 and spec.fixed["epochs"] == 1
    assert spec.search["lr"].values == (5e-5, 1e-4) and spec.variants["ce"] == {"vda.loss": "ce"}
