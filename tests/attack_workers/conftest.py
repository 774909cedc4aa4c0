"""Fixtures for attack_workers: small real checkpoints fine-tuned on real sentences, a local Ray.

The checkpoints are the packaged all-MiniLM-L6-v2 backbone fine-tuned for a few dozen steps on
``data/reviews`` (sentiment) or ``data/pairs`` (paraphrase pairs), so they are accurate on their
dev sentences and an attack has predictions to flip. Everything is offline.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch

DATA = Path(__file__).parent / "data"


def make_checkpoint(directory: Path, dataset: Path, text_columns: tuple[str, ...], steps: int = 40,
                    seed: int = 0) -> Path:
    """Fine-tune the packaged backbone on ``dataset``'s train split and save a VDA checkpoint."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from vda.assets import default_backbone_path
    from vda.checkpoint import Manifest, package_versions, save_checkpoint
    from vda.config import DataConfig, TrainConfig
    from vda.data import load_task

    data = DataConfig(dataset=str(dataset), text_columns=text_columns, max_length=64)
    task = load_task(data)
    torch.manual_seed(seed)
    backbone = str(default_backbone_path())
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=task.num_labels)
    train = task.splits["train"]
    pairs = [(e.text_a, e.text_b) if task.is_pair else (e.text_a,) for e in train]
    batch = tokenizer(*zip(*pairs), padding=True, truncation=True, max_length=64, return_tensors="pt")
    labels = torch.tensor([e.label for e in train])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        accuracy = float((model(**batch).logits.argmax(-1) == labels).float().mean())
    config = dataclasses.replace(TrainConfig(), data=data, seed=seed).to_dict()
    manifest = Manifest(run_id=f"{directory.name}-{seed}", config=config, dataset=task.describe(), epoch=1,
                        step=steps, metrics={"train_acc": accuracy}, substitution_mode="sharp",
                        versions=package_versions())
    return save_checkpoint(directory, model, tokenizer, manifest)


@pytest.fixture(scope="session")
def review_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "reviews", DATA / "reviews", ("text",))


@pytest.fixture(scope="session")
def pair_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "pairs", DATA / "pairs", ("sentence1", "sentence2"))


@pytest.fixture(scope="session")
def worker() -> Any:
    """An in-process attack worker with the default (packaged) MLM and sentence encoder."""
    from attack_workers.worker import AttackWorker, WorkerConfig

    return AttackWorker(WorkerConfig(num_threads=2))


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """A private 2-CPU Ray instance for one test module (run the suite under /work/shared/bin/offline)."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
