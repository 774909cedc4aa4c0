"""The cluster-launcher configs pass Ray's own validation, offline (schema, node types, worker counts)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLUSTERS = [REPO / "cluster.yaml", REPO / "tune" / "configs" / "local_cluster.yaml"]


def _validated(config: dict) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


@pytest.mark.parametrize("path", CLUSTERS, ids=lambda p: p.name)
def test_cluster_config_passes_ray_validation(path):
    config = _validated(yaml.safe_load(path.read_text()))
    head = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head  # dashboard only through `ray dashboard` port forwarding
    assert any("pip install" in c and "-e ." in c for c in config["setup_commands"])


def test_aws_cluster_autoscales_gpu_workers_from_zero():
    config = _validated(yaml.safe_load((REPO / "cluster.yaml").read_text()))
    assert config["provider"]["type"] == "aws"
    worker = config["available_node_types"]["gpu_worker"]
    assert worker["min_workers"] == 0 and worker["max_workers"] > 0
    assert worker["node_config"]["InstanceType"].startswith(("g5", "p4d"))
    assert config["available_node_types"]["head"]["resources"] == {"CPU": 0}


def test_validation_rejects_a_broken_config():
    import jsonschema

    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    config["available_node_types"]["gpu_worker"]["min_workers"] = "zero"
    with pytest.raises(jsonschema.ValidationError):
        _validated(config)
