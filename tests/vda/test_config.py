import math

import pytest
import torch

from vda.config import (MODE_SIGMA, SUBSTITUTION_MODES, ConfigError, TrainConfig, VDAConfig, apply_overrides,
                        config_from_dict, load_config)


@pytest.mark.parametrize("mode", SUBSTITUTION_MODES)
def test_sigma_left_unset_follows_the_mode_and_is_recorded_resolved(mode):
    cfg = config_from_dict({"vda": {"mode": mode}})
    assert cfg.vda.sigma == MODE_SIGMA[mode]
    assert cfg.to_dict()["vda"]["sigma"] == MODE_SIGMA[mode]  # what the manifest records
    assert config_from_dict({"vda": {"mode": mode, "sigma": None}}) == cfg
    assert config_from_dict({"vda": {"mode": mode, "sigma": 0.3}}).vda.sigma == 0.3  # explicit wins


def test_the_default_sharp_sigma_perturbs_the_substitution():
    """Sharp mode adds eps to log-probabilities: its default must move p', which the paper's 1e-2 does not."""
    from vda.substitution import ScoredPositions, sample_substitution

    cfg = TrainConfig().vda
    assert cfg.mode == "sharp"
    scores = torch.log_softmax(3 * torch.randn(2000, 33, generator=torch.Generator().manual_seed(0)), dim=-1)

    def shift(sigma: float) -> float:  # mean total-variation distance between noisy and noise-free p'
        clean = sample_substitution(ScoredPositions(None, scores), VDAConfig(sigma=sigma, noise=False)).weights
        noisy = sample_substitution(ScoredPositions(None, scores), VDAConfig(sigma=sigma),
                                    torch.Generator().manual_seed(1)).weights
        return 0.5 * float((noisy - clean).abs().sum(-1).mean())

    assert shift(cfg.sigma) > 0.2 and shift(1e-2) < 0.01


@pytest.mark.parametrize("override", ["vda.sigma=inf", "vda.sigma=nan", "lr=.inf", "strategy.adv_lr=-inf",
                                      "warmup_ratio=.nan"])
def test_non_finite_numbers_are_refused_at_load(override):
    with pytest.raises(ConfigError, match="is not a finite number"):
        load_config(None, [override])


def test_non_finite_numbers_are_refused_when_validating_objects():
    with pytest.raises(ConfigError, match="vda.sigma: inf must be a number >= 0"):
        TrainConfig(vda=VDAConfig(sigma=math.inf)).validate()
    with pytest.raises(ConfigError, match="lr: nan must be a number > 0"):
        TrainConfig(lr=math.nan).validate()


@pytest.mark.parametrize("raw, fragment", [
    ({"vda": {"sigma": -0.1}}, "vda.sigma: -0.1 must be a number >= 0"),
    ({"vda": {"k": 0}}, "vda.k: 0 must be in [1, 64]"),
    ({"vda": {"lam": -1}}, "vda.lam: -1.0 must be a number >= 0"),
    ({"vda": {"mode": "sharpp"}}, "vda.mode: 'sharpp' is unknown; did you mean 'sharp'?"),
    ({"vda": {"loss": "kl"}}, "vda.loss: 'kl' is unknown"),
    ({"vda": {"augment": "mean"}}, "vda.augment: 'mean' is unknown"),
    ({"vda": {"sigmaa": 1}}, "vda.sigmaa: unknown key; did you mean vda.'sigma'?"),
    ({"lr": "fast"}, "lr: 'fast' has the wrong type"),
    ({"data": {"text_columns": ["a", "b", "c"]}}, "data.text_columns: ['a', 'b', 'c'] has 3 columns"),
    ({"epochs": 0}, "epochs: 0 must be a number >= 1"),
])
def test_bad_values_are_named_with_their_key(raw, fragment):
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    assert fragment in str(err.value)


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as err:
        config_from_dict({"vda": {"sigma": -1, "k": 0}, "lr": 0, "epochs": "many"})
    assert len(err.value.problems) == 4  # the wrong type as well as the bad values


def test_overrides_parse_yaml_scalars_and_nest():
    raw = apply_overrides({"vda": {"k": 1}}, ["vda.k=3", "vda.sigma=5e-2", "vda.noise=false", "data.text_columns=[a, b]"])
    cfg = config_from_dict(raw)
    assert (cfg.vda.k, cfg.vda.sigma, cfg.vda.noise, cfg.data.text_columns) == (3, 0.05, False, ("a", "b"))


def test_problems_are_headed_with_where_they_came_from(tmp_path):
    with pytest.raises(ConfigError, match=r"^command line overrides: 1 problem\(s\)"):
        load_config(None, ["vda.k=0"])
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 1\n")
    with pytest.raises(ConfigError, match=rf"^{path} with command line overrides: 1 problem"):
        load_config(path, ["vda.k=0"])
    with pytest.raises(ConfigError, match="'vda' is a value"):
        apply_overrides({"vda": 3}, ["vda.k=1"])


def test_load_config_reads_yaml_and_reports_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("vda:\n  mode: code\n  k: 2\nepochs: 1\n")
    assert load_config(path, ["vda.k=4"]).vda.k == 4
    path.write_text("vda:\n  k: -2\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_config(path)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.yaml")


def test_round_trip_through_dict():
    cfg = config_from_dict({"vda": {"k": 3, "mode": "paper"}, "data": {"text_columns": ["q", "s"]}})
    assert config_from_dict(cfg.to_dict()) == cfg
