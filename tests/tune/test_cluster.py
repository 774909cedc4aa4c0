"""The cluster-launcher configs pass Ray's own validation, offline (schema, node types, worker counts)."""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import pytest
import yaml

from vda.config import ConfigError

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


def test_sweeps_that_write_to_a_cluster_mount_use_one_the_aws_cluster_mounts():
    """A sweep whose output_dir is absolute runs on the cluster: every node must read its checkpoints there."""
    from tune.config import load_sweep, shipped_configs

    setup = " ".join(yaml.safe_load((REPO / "cluster.yaml").read_text())["setup_commands"])
    mounts = set(re.findall(r"mount .* (/\S+)\)", setup))
    assert mounts, "cluster.yaml mounts no shared directory"
    absolute = {}
    for name in shipped_configs():
        try:
            output_dir = load_sweep(name).sweep.output_dir
        except ConfigError:  # presets that need files made earlier (ADA sets); not cluster sweeps
            continue
        if output_dir.startswith("/"):
            absolute[name] = output_dir
    assert absolute and all(any(d.startswith(m + "/") for m in mounts) for d in absolute.values()), (absolute, mounts)


def test_validation_rejects_a_broken_config():
    import jsonschema

    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    config["available_node_types"]["gpu_worker"]["min_workers"] = "zero"
    with pytest.raises(jsonschema.ValidationError):
        _validated(config)


def _cluster_check():
    import importlib.util

    spec = importlib.util.spec_from_file_location("cluster_check", REPO / "scripts" / "cluster_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_cluster_check_runs_cluster_yamls_own_start_commands(tmp_path):
    """scripts/cluster_check.py derives its `ray start` lines and shared cache from cluster.yaml (so the two
    cannot drift); a cluster.yaml edit it cannot translate fails here, not minutes into the check."""
    check = _cluster_check()
    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    ports = check.free_ports()
    dirs = {"head": tmp_path / "ray", "worker": tmp_path / "wrk"}
    local = check.local_commands(config, ports, dirs, tmp_path / "shared")
    gcs = ports["head"]["gcs"]
    assert f"ray start --head --port={gcs} " in local.head and "--dashboard-host=127.0.0.1" in local.head
    assert "--autoscaling-config" not in local.head and f"--temp-dir={dirs['head']}" in local.head
    assert f"ray start --address=127.0.0.1:{gcs} " in local.worker and f"--temp-dir={dirs['worker']}" in local.worker
    assert local.cache_dir == str(tmp_path / "shared" / "vda-cache")  # VDA_CACHE_DIR on the shared mount
    assert any("lexicon build" in c for c in local.head_setup) and not any("~/vda" in c for c in local.head_setup)
    assert len({ports["head"][k] for k in check.PORT_NAMES} | {ports["worker"][k] for k in check.PORT_NAMES}) == 16

    config["worker_start_ray_commands"][-1] = config["worker_start_ray_commands"][-1].replace(":6379", ":6380")
    with pytest.raises(check.SetupError, match="worker --address"):
        check.local_commands(config, ports, dirs, tmp_path / "shared")
