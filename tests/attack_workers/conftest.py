"""Fixtures for attack_workers: small real checkpoints fine-tuned on real sentences, a local Ray.

The checkpoints are the packaged all-MiniLM-L6-v2 backbone fine-tuned for a few dozen steps on
``data/reviews`` (sentiment) or ``data/pairs`` (paraphrase pairs), so they are accurate on their
dev sentences and an attack has predictions to flip. Everything is offline.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

DATA = Path(__file__).parent / "data"


def make_checkpoint(directory: Path, dataset: Path, text_columns: tuple[str, ...], steps: int = 20,
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
    # Train only the top two layers and the head: a few seconds, and enough to fit the tiny train split.
    model.bert.embeddings.requires_grad_(False)
    for layer in model.bert.encoder.layer[:-2]:
        layer.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-4)
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


def example_row(example_id: str, status: str = "failed", checkpoint: str = "c1", key: str = "k1",
                protocol: str = "textattack", finished_at: float = 1.0, attack: str = "bert-attack",
                union: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A made-up store row (``store.EXAMPLE_SCHEMA``) for tests of the store and of resume planning;
    ``union``: the union key (default: the attack key, a union of one attack)."""
    row = {
        "checkpoint_hash": checkpoint, "run_id": f"run-{checkpoint}", "attack_key": key, "protocol": protocol,
        "attack": attack, "union_key": key if union is None else union,
        "attack_params": json.dumps({"max_candidates": 48}), "dataset": "reviews", "split": "dev",
        "example_id": example_id, "label": 1, "clean_pred": 1 if status != "skipped" else 0,
        "adv_pred": 0 if status == "succeeded" else 1, "status": status, "num_queries": 10, "num_words": 10,
        "num_whitespace_words": 10, "words_changed": 1 if status == "succeeded" else 0,
        "original_text": f"text {example_id}", "original_text_b": None, "perturbed_text": f"text {example_id}",
        "perturbed_text_b": None, "seconds": 0.5, "shard_id": "s", "worker": "w", "node_id": "n",
        "finished_at": finished_at,
        "substitutions": "[]", "audit_antonym": False, "audit_polarity_flip": False, "audit_nonword": False,
        "audit_min_cos": float("nan"), "audit_unknown_pairs": 0, "audit_hole": False, "audit_pos_change": False,
        "audit_inflection_change": False, "audit_stopword_swap": False, "audit_flagged": False,
    }
    row.update(overrides)
    return row


@pytest.fixture()
def make_row() -> Any:
    return example_row


@pytest.fixture()
def make_shard() -> Any:
    """Rows of one shard: ``make_shard(["e1", "e2"], status="succeeded", key="k2")``."""
    return lambda ids, **kw: [example_row(i, **kw) for i in ids]


@pytest.fixture(scope="session")
def review_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "reviews", DATA / "reviews", ("text",))


@pytest.fixture(scope="session")
def pair_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "pairs", DATA / "pairs", ("sentence1", "sentence2"))


@pytest.fixture(scope="session")
def worker() -> Any:
    """An in-process attack worker with the default (packaged) MLM and sentence encoder."""
    from attack_workers.runtime.worker import AttackWorker, WorkerConfig

    return AttackWorker(WorkerConfig(num_threads=1))


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """A private 2-CPU Ray instance for one test module (run the suite under ../shared/bin/offline)."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


# This tiny model survives every meaning-preserving swap at the default word threshold (0.7); a loose
# filter lets its predictions flip, so the bookkeeping of successes is tested, and
# test_vda_paper_keeps_only_substitutes_above_the_word_threshold checks that the filter is applied.
LOOSE_WORD_THRESHOLD = 0.3
LOOSE_STRICT = {"strict_word_similarity_threshold": LOOSE_WORD_THRESHOLD, "strict_max_log_prob_drop": 4.0,
                "strict_window_similarity": 0.5}


def _plan_shard(checkpoint, store, protocol, max_candidates=8, loose_strict=False):
    """One shard of the review checkpoint's dev set; ``loose_strict`` also loosens strict's cosine and fluency."""
    from attack_workers.runtime.evaluation import EvalConfig, plan_evaluation
    from attack_workers.attack.protocols import AttackParams
    from attack_workers.results.store import ResultStore
    from attack_workers.runtime.worker import WorkerConfig

    params = AttackParams(max_candidates=max_candidates, word_similarity_threshold=LOOSE_WORD_THRESHOLD,
                          **(LOOSE_STRICT if loose_strict else {}))
    config = EvalConfig(store=str(store), protocol=protocol, params=params, shard_size=100)
    (shard,) = plan_evaluation([str(checkpoint)], config, WorkerConfig(), ResultStore(config.store)).shards
    return shard


@pytest.fixture(scope="session")
def plan_shard() -> Any:
    """``plan_shard(checkpoint, store, protocol, max_candidates=8, loose_strict=False)``: one planned shard."""
    return _plan_shard
