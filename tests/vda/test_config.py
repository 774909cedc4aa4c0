import pytest

from vda.config import ConfigError, TrainConfig, apply_overrides, config_from_dict, load_config


def test_defaults_follow_the_paper():
    cfg = TrainConfig().validate()
    assert (cfg.lr, cfg.warmup_ratio, cfg.vda.sigma, cfg.vda.lam) == (1e-5, 0.05, 1e-2, 1.0)


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
        config_from_dict({"vda": {"sigma": -1, "k": 0}, "lr": 0})
    assert len(err.value.problems) == 3


def test_overrides_parse_yaml_scalars_and_nest():
    raw = apply_overrides({"vda": {"k": 1}}, ["vda.k=3", "vda.sigma=5e-2", "vda.noise=false", "data.text_columns=[a, b]"])
    cfg = config_from_dict(raw)
    assert (cfg.vda.k, cfg.vda.sigma, cfg.vda.noise, cfg.data.text_columns) == (3, 0.05, False, ("a", "b"))


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
