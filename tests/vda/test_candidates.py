"""Sharp mode's candidate table: computed once per key, shared through the cache dir, checked on load."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vda.augment import VirtualAugmenter
from vda.batching import encode_examples
from vda.candidates import Numerics, candidate_table, file_lock
from vda.config import ConfigError, DataConfig, TrainConfig, VDAConfig, config_from_dict
from vda.data import Example
from vda.train import FitResult, fit, prepare_candidates


@pytest.fixture(autouse=True)
def one_thread():
    """The tiny models train fastest on one thread (several times faster when the other core is busy)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def mlm_calls(monkeypatch) -> list[int]:
    """One entry per batch the MLM scores (table build or training step)."""
    calls: list[int] = []
    scored_chunks = VirtualAugmenter._scored_chunks
    monkeypatch.setattr(VirtualAugmenter, "_scored_chunks", lambda self, *a: calls.append(1) or scored_chunks(self, *a))
    return calls


def _cfg(model_dir: str, **vda) -> TrainConfig:
    return TrainConfig(model=model_dir, mlm=model_dir, lr=1e-3, batch_size=16, epochs=1, eval_test=False,
                       data=DataConfig(dataset="mr", max_train_examples=48, max_eval_examples=16, max_length=32),
                       vda=VDAConfig(k=2, mode="sharp", sigma=1.0, **vda))


def _fit(cfg: TrainConfig, run_dir: Path) -> FitResult:
    return fit(cfg, run_dir, progress=False)


def _same_weights(a: FitResult, b: FitResult) -> bool:
    wa, wb = (load_file(str(r.run_dir / "last" / "model" / "model.safetensors")) for r in (a, b))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _table_dirs(tables: Path) -> list[Path]:
    return sorted(p for p in tables.iterdir() if p.is_dir()) if tables.is_dir() else []


def test_runs_with_one_key_share_one_file_and_train_the_model_an_own_table_trains(tmp_path, tiny_model_dir, tables,
                                                                                  mlm_calls):
    cfg = _cfg(tiny_model_dir)
    first = _fit(cfg, tmp_path / "first")
    assert len(mlm_calls) == 1  # 48 examples: one scoring batch up front, no MLM pass while training
    second = _fit(cfg, tmp_path / "second")
    assert len(mlm_calls) == 1  # loaded: the MLM did not run at all
    own = _fit(dataclasses.replace(cfg, vda=dataclasses.replace(cfg.vda, shared_candidates=False)), tmp_path / "own")
    assert len(mlm_calls) == 2

    assert [r.candidates.source for r in (first, second, own)] == ["computed", "loaded", "memory"]
    assert first.candidates.key == second.candidates.key == own.candidates.key and own.candidates.path is None
    assert _table_dirs(tables) == [Path(first.candidates.path)] == [tables / first.candidates.key]
    assert _same_weights(first, second) and _same_weights(first, own)
    recorded = json.loads((second.run_dir / "results.json").read_text())["candidates"]
    assert recorded["source"] == "loaded" and recorded["key"] == first.candidates.key


def test_prepare_candidates_makes_the_file_fit_loads_and_top_k_has_its_own(tmp_path, tiny_model_dir, tables,
                                                                           mlm_calls):
    cfg = _cfg(tiny_model_dir)
    path = prepare_candidates(cfg, progress=False)
    assert path is not None and len(mlm_calls) == 1
    result = _fit(dataclasses.replace(cfg, max_steps=1), tmp_path / "run")
    assert result.candidates.source == "loaded" and Path(result.candidates.path) == path and len(mlm_calls) == 1

    other = prepare_candidates(_cfg(tiny_model_dir, top_k=8), progress=False)
    assert other != path and _table_dirs(tables) == sorted([path, other])
    assert json.loads((other / "meta.json").read_text())["inputs"]["top_k"] == 8


def test_a_second_process_waits_for_the_writer_then_loads_its_table(tmp_path, tiny_model_dir, tables, mlm_calls,
                                                                    monkeypatch, caplog):
    cfg = _cfg(tiny_model_dir)
    made = prepare_candidates(cfg, progress=False)  # what the writer will publish, made in another cache dir
    other = tmp_path / "other"
    other.mkdir()
    (other / "data").symlink_to(tables.parent / "data")
    monkeypatch.setenv("VDA_CACHE_DIR", str(other))
    (other / "candidates").mkdir()
    found: list[Path | None] = []
    waiting = threading.Thread(target=lambda: found.append(prepare_candidates(cfg, progress=False)))
    with caplog.at_level(logging.INFO, logger="vda.candidates"):
        with file_lock(other / "candidates" / f"{made.name}.lock", exclusive=True):  # the writer, at work
            waiting.start()
            deadline = time.time() + 120  # the waiter loads its data and MLM first: seconds on a busy machine
            while "waiting for another process" not in caplog.text and time.time() < deadline:
                time.sleep(0.1)
            assert waiting.is_alive() and "waiting for another process" in caplog.text
            shutil.copytree(made, other / "candidates" / made.name)
        waiting.join(timeout=60)
    assert found == [other / "candidates" / made.name] and len(mlm_calls) == 1  # loaded, not computed again


def _truncate(directory: Path) -> str:
    path = directory / "indices.npy"
    path.write_bytes(path.read_bytes()[:-100])
    return "truncated"


def _flip_a_byte(directory: Path) -> str:
    path = directory / "scores.npy"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    return "content hash differs"


def _break_meta(directory: Path) -> str:
    (directory / "meta.json").write_text("{not json")
    return "unreadable"


@pytest.mark.parametrize("damage", [_truncate, _flip_a_byte, _break_meta], ids=["truncated", "byte", "meta"])
def test_a_damaged_table_is_reported_removed_and_rebuilt(tmp_path, tiny_model_dir, tables, mlm_calls, caplog,
                                                         damage):
    cfg = _cfg(tiny_model_dir)
    reference = _fit(cfg, tmp_path / "reference")
    directory = Path(reference.candidates.path)
    problem = damage(directory)
    with caplog.at_level(logging.WARNING, logger="vda.candidates"):
        again = _fit(cfg, tmp_path / "again")
    assert f"{directory}: " in caplog.text and problem in caplog.text and "computing" in caplog.text
    assert again.candidates.source == "computed" and len(mlm_calls) == 2
    assert _same_weights(reference, again)


def test_a_table_over_cache_mb_is_not_built_and_the_mlm_scores_every_batch(tmp_path, tiny_model_dir, tables,
                                                                          mlm_calls, caplog):
    cfg = _cfg(tiny_model_dir, top_k=1000, cache_mb=1)  # ~1200 positions x 1001 candidates x 8 bytes: ~9 MiB
    with caplog.at_level(logging.WARNING, logger="vda.candidates"):
        too_big = _fit(cfg, tmp_path / "too-big")
    assert "more than vda.cache_mb=1" in caplog.text and too_big.candidates is None
    assert len(mlm_calls) == 3 and not tables.exists()  # every training batch, no file
    without = _fit(dataclasses.replace(cfg, vda=dataclasses.replace(cfg.vda, cache_mb=0)), tmp_path / "without")
    assert without.candidates is None and len(mlm_calls) == 6
    assert _same_weights(too_big, without)


def test_paper_mode_has_no_table(tmp_path, tiny_model_dir, tables):
    cfg = dataclasses.replace(_cfg(tiny_model_dir), vda=VDAConfig(mode="paper", k=1), max_steps=1)
    assert prepare_candidates(cfg, progress=False) is None
    assert _fit(cfg, tmp_path / "run").candidates is None and not tables.exists()


def test_table_rows_give_the_mlm_path_s_virtual_embeddings_and_refuse_other_examples(tiny_mlm, tokenizer):
    texts = ["a gripping , beautifully acted film .", "dull .", "the plot goes nowhere , slowly ."]
    split = encode_examples(tokenizer, [Example(f"x-{i}", t, None, 0) for i, t in enumerate(texts)], 32)
    cfg = VDAConfig(mode="sharp", k=2, sigma=1.0, chunk_positions=3, shared_candidates=False)
    aug = VirtualAugmenter(tiny_mlm, cfg)
    aug.table, report = candidate_table(aug, split, tokenizer, Numerics(torch.device("cpu"), None), progress=False)
    assert report.source == "memory" and report.examples == 3
    batch = tokenizer([texts[2], texts[0]], padding=True, return_tensors="pt")
    ids, mask = batch["input_ids"], batch["attention_mask"]

    def virtual(keys):
        return aug(ids, mask, 2, generator=torch.Generator().manual_seed(0), keys=keys)

    # the same chunks and noise as the MLM path; the scores agree up to the MLM's batch-dependent rounding
    assert torch.allclose(virtual([2, 0]), virtual(None), atol=1e-6)
    with pytest.raises(ValueError, match="do not hold this batch's tokens"):
        virtual([0, 2])


def test_shared_candidates_is_validated_as_a_bool():
    assert config_from_dict({"vda": {"shared_candidates": "false"}}).vda.shared_candidates is False
    with pytest.raises(ConfigError, match="vda.shared_candidates"):
        TrainConfig(vda=VDAConfig(shared_candidates="yes")).validate()


def test_no_two_vda_modules_import_each_other():
    """Every import counts, type-checking and function-local ones too: a cycle is one refactor from an ImportError."""
    import ast

    package = Path(__file__).resolve().parents[2] / "vda"
    modules = {path.stem: path for path in package.glob("*.py")}
    imports: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vda."):
                found.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("vda."))
        imports[name] = found & set(modules) - {name}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        return any(m == target or (m not in seen and reaches(m, target, seen | {m})) for m in imports[start])

    cycles = sorted(name for name in modules if reaches(name, name, {name}))
    assert not cycles, f"vda modules in an import cycle: {cycles}"
