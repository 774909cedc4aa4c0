"""Fixtures for the sweep tests: a tiny BERT (classifier and MLM), tiny sweep configs, a private local Ray.

Everything is offline. Run the Ray tests inside the private network namespace:
``/work/shared/bin/offline .venv/bin/python -m pytest tests/tune``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 2-layer, hidden-32 BERT MLM on the real vocabulary, saved like a hub model (used as model and MLM)."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from vda.assets import default_backbone_path

    path = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(str(default_backbone_path()))
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                               num_attention_heads=2, intermediate_size=64)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


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
