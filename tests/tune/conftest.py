"""Fixtures for the sweep tests: a tiny BERT (classifier and MLM), tiny sweep configs, a private local Ray.

Everything is offline. Run the Ray tests inside the private network namespace:
``../shared/bin/offline .venv/bin/python -m pytest tests/tune``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]


def _tiny_sweep(output_dir: Path, model_dir: str, variants: dict[str, Any] | None = None,
                **sweep: Any) -> dict[str, Any]:
    return {
        "fixed": {"model": model_dir, "mlm": model_dir, "lr": 1e-3, "batch_size": 16, "epochs": 1,
                  "eval_test": False, "data": {"dataset": "mr", "max_train_examples": 32, "max_eval_examples": 16,
                                               "max_length": 32},
                  "vda": {"mode": "sharp", "sigma": 1.0, "k": 1}},
        "variants": variants if variants is not None else {"baseline": {"vda.lam": 0.0}, "vda": {}},
        "sweep": {"name": "tiny", "output_dir": str(output_dir), "max_failures": 1,
                  "attack": {"num_examples": 4, "shard_size": 2, "mlm": model_dir, "params": {"max_candidates": 8}},
                  **sweep},
    }


@pytest.fixture()
def make_sweep() -> Callable[..., dict[str, Any]]:
    """``make_sweep(output_dir, model_dir, variants=None, **sweep)``: a sweep YAML (as a dict) that trains
    and attacks in seconds: tiny BERT, 32 MR sentences, 4 attacked dev examples."""
    return _tiny_sweep


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """A private 2-CPU Ray for one test module; the sweep uses it instead of starting its own."""
    import ray

    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
    try:
        yield ray
    finally:
        ray.shutdown()
