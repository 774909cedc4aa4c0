"""The sweep makes each distinct shared candidate table once, before its trials start.

The Ray test starts its own 2-CPU Ray after pointing VDA_CACHE_DIR at a temporary directory (Ray's
workers inherit the environment it was started with). Run inside the private network namespace:
``../shared/bin/offline .venv/bin/python -m pytest tests/tune/test_candidate_prepare.py``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path


from tune.config import sweep_from_dict
from tune.sweep import fit_resources, prepare_candidate_tables, table_configs

REPO = Path(__file__).resolve().parents[2]


def _spec(make_sweep, tmp_path, model_dir, variants, search=None):
    raw = make_sweep(tmp_path / "results", model_dir, variants)
    raw["search"] = search or {}
    return sweep_from_dict(raw, "test")


def test_one_config_per_distinct_table_with_searched_grid_values_expanded(tmp_path, tiny_model_dir, make_sweep):
    variants = {"vda": {}, "freelb": {"strategy.name": "freelb"}, "top8": {"vda.top_k": 8},
                "paper": {"vda.mode": "paper"}, "own": {"vda.shared_candidates": False}, "nocache": {"vda.cache_mb": 0}}
    # lam = 0 trials use no table, lam = 1 trials do; a range over lr (not a table key) changes nothing
    spec = _spec(make_sweep, tmp_path, tiny_model_dir, variants,
                 {"vda.lam": {"grid": [0.0, 1.0]}, "lr": {"loguniform": [1e-4, 1e-3]}})
    configs = table_configs(spec)
    assert sorted(c.vda.top_k for c in configs) == [8, 32]  # vda and freelb share one; the rest use no shared table
    assert all(c.vda.lam == 1.0 for c in configs)

    no_variants = _spec(make_sweep, tmp_path, tiny_model_dir, {}, {"vda.top_k": {"choice": [8, 16]}})
    assert sorted(c.vda.top_k for c in table_configs(no_variants)) == [8, 16]


def test_a_range_over_a_table_key_leaves_the_tables_to_the_trials(tmp_path, tiny_model_dir, make_sweep):
    spec = _spec(make_sweep, tmp_path, tiny_model_dir, {"vda": {}}, {"data.max_length": {"randint": [16, 33]}})
    assert table_configs(spec) == []


def test_the_table_made_in_a_ray_task_is_the_one_a_trial_loads(tmp_path, tiny_model_dir, make_sweep, tables):
    import ray

    from vda.train import fit

    spec = _spec(make_sweep, tmp_path, tiny_model_dir, {"baseline": {"vda.lam": 0.0}, "vda": {}})
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
    try:
        paths = prepare_candidate_tables(spec, fit_resources(spec, 2, 0, local=True), progress=False)
    finally:
        ray.shutdown()
    assert len(paths) == 1 and paths[0].parent == tables

    cfg = dataclasses.replace(table_configs(spec)[0], max_steps=1)
    result = fit(cfg, tmp_path / "trial", progress=False)
    assert result.candidates.source == "loaded" and Path(result.candidates.path) == paths[0]
