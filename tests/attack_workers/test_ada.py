"""ADA sets without Ray: concurrent generations of one set (the pool-backed generation is in test_pool.py)."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import attack_workers.ada as ada
from attack_workers.runtime.evaluation import EvalConfig
from attack_workers.results.store import ResultStore


def test_two_concurrent_generations_of_one_set_both_succeed_and_leave_no_temp(tmp_path, monkeypatch, make_shard):
    out = tmp_path / "ada"
    ResultStore(out / "store").write_examples(make_shard(["e1", "e2"], status="succeeded"))
    both_attacking = threading.Barrier(2)

    def attacked(*args, **kwargs):  # both generations are past the reuse check before either writes
        both_attacking.wait(timeout=60)
        target = SimpleNamespace(checkpoint_hash="c1", attack_key="k1")
        return SimpleNamespace(plan=SimpleNamespace(problems=[], targets=[target]), failed_shards=[])

    monkeypatch.setattr(ada, "ada_key", lambda *args: "0123456789abcdef")
    monkeypatch.setattr(ada, "evaluate", attacked)
    monkeypatch.setattr(ada, "load_manifest", lambda checkpoint: SimpleNamespace(label_names=["neg", "pos"]))
    config = EvalConfig(store="", split="train")
    with ThreadPoolExecutor(2) as threads:
        paths = list(threads.map(lambda _: ada.generate_adversarial_set(tmp_path / "ckpt", out, config), range(2)))

    directory = out / "0123456789abcdef"
    assert paths == [directory / ada.SET_FILE] * 2
    assert sorted(p.name for p in out.iterdir()) == [directory.name, ada.SET_FILE, "store"]  # no temp dir or link
    assert sorted(p.name for p in directory.iterdir()) == [ada.INFO_FILE, ada.SET_FILE]
    assert (out / ada.SET_FILE).resolve() == (directory / ada.SET_FILE).resolve()
    records = [json.loads(line) for line in (out / ada.SET_FILE).read_text().splitlines()]
    assert [r["source_example_id"] for r in records] == ["e1", "e2"] and {r["label"] for r in records} == {"pos"}
