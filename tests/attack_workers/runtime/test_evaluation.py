"""Planning an evaluation: finding checkpoints, bad inputs, example sampling, resume planning."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from attack_workers.runtime.checkpoints import EvaluationError, find_checkpoints
from attack_workers.runtime.evaluation import EvalConfig, evaluate, plan_evaluation
from attack_workers.attack.protocols import AttackParams
from attack_workers.runtime.shards import select_examples
from attack_workers.results.store import ResultStore
from attack_workers.runtime.worker import WorkerConfig


def config(tmp_path: Path, **kw) -> EvalConfig:
    return EvalConfig(store=str(tmp_path / "store"), params=AttackParams(max_candidates=8), shard_size=3, **kw)


def plan(checkpoints, tmp_path, worker=None, **kw):
    cfg = config(tmp_path, **kw)
    return plan_evaluation([str(c) for c in checkpoints], cfg, worker or WorkerConfig(), ResultStore(cfg.store))


def copy(checkpoint: Path, where: Path) -> Path:
    return Path(shutil.copytree(checkpoint, where))


def test_paths_that_hold_no_checkpoint_are_usage_errors(tmp_path, review_checkpoint):
    with pytest.raises(EvaluationError, match="no such file"):
        find_checkpoints([str(tmp_path / "missing")])
    with pytest.raises(EvaluationError, match="matches nothing"):
        find_checkpoints([str(tmp_path / "runs-*")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvaluationError, match="not a checkpoint and holds none"):
        find_checkpoints([str(tmp_path / "empty")])
    with pytest.raises(EvaluationError, match="not a checkpoint"):
        find_checkpoints([str(review_checkpoint / "manifest.json")])


def test_sweep_directories_and_globs(tmp_path, review_checkpoint):
    first = copy(review_checkpoint, tmp_path / "exp" / "trial_1" / "checkpoint_000002")
    second = copy(review_checkpoint, tmp_path / "exp" / "trial_2" / "best")
    copy(review_checkpoint, tmp_path / "exp" / "trial_2" / ".best.tmp0001")  # save_checkpoint mid-write
    assert find_checkpoints([str(tmp_path / "exp")]) == [first.resolve(), second.resolve()]
    assert find_checkpoints([str(tmp_path / "exp" / "*" / "best")]) == [second.resolve()]
    assert find_checkpoints([str(second), str(tmp_path / "exp")]) == [second.resolve(), first.resolve()]
    assert len(plan([tmp_path / "exp"], tmp_path).targets) == 1  # two copies of one checkpoint: attacked once


def test_damaged_checkpoints_are_skipped_with_the_reason(tmp_path, review_checkpoint):
    good = copy(review_checkpoint, tmp_path / "runs" / "good")
    corrupt = copy(review_checkpoint, tmp_path / "runs" / "corrupt")
    weights = next((corrupt / "model").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    partial = copy(review_checkpoint, tmp_path / "runs" / "partial")
    (partial / "manifest.json").unlink()
    broken = copy(review_checkpoint, tmp_path / "runs" / "broken")
    (broken / "manifest.json").write_text("{not json")
    edited = copy(review_checkpoint, tmp_path / "runs" / "edited")
    manifest = json.loads((edited / "manifest.json").read_text())
    (edited / "manifest.json").write_text(json.dumps({**manifest, "format_version": "1"}))
    result = plan([tmp_path / "runs"], tmp_path)
    assert [t.path for t in result.targets] == [str(good.resolve())]
    problems = {Path(p.path).name: p.error for p in result.problems}
    assert set(problems) == {"corrupt", "partial", "broken", "edited"}
    assert "corrupt" in problems["corrupt"] and "safetensors" in problems["corrupt"]
    assert "no manifest.json" in problems["partial"]
    assert "corrupt manifest" in problems["broken"]
    assert "wrong type (format_version='1')" in problems["edited"]
    with pytest.raises(EvaluationError, match="no checkpoint can be evaluated"):
        plan([corrupt, partial], tmp_path)


def test_a_lone_damaged_checkpoint_is_recorded_before_the_evaluation_stops(tmp_path, review_checkpoint):
    corrupt = copy(review_checkpoint, tmp_path / "corrupt")
    weights = next((corrupt / "model").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(EvaluationError, match="no checkpoint can be evaluated"):
        evaluate([str(corrupt)], config(tmp_path))
    failures = ResultStore(tmp_path / "store").load_failures()
    assert failures[["kind", "path"]].values.tolist() == [["checkpoint", str(corrupt.resolve())]]
    assert "unreadable weights" in failures["error"][0]


def test_a_standalone_evaluation_starts_ray_without_token_auth(tmp_path):
    """Ray >= 2.52 would write ~/.ray/auth_token and warn for a private instance; the sweep already opts out."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    probe = ("import os; from attack_workers.runtime.evaluation import ray_session\n"
             "with ray_session(None): print(os.environ['RAY_AUTH_MODE'])")
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-1] == "disabled"
    assert "Token authentication is enabled" not in out.stderr and not (tmp_path / ".ray" / "auth_token").exists()


def test_label_set_must_match_the_dataset(tmp_path, review_checkpoint):
    data = tmp_path / "relabelled"
    data.mkdir()
    for split in ("train", "dev"):
        text = (Path(__file__).parents[1] / "data" / "reviews" / f"{split}.csv").read_text()
        (data / f"{split}.csv").write_text(text.replace(",positive", ",good").replace(",negative", ",bad"))
    with pytest.raises(EvaluationError, match=r"trained with labels \['negative', 'positive'\] but dataset"):
        plan([review_checkpoint], tmp_path, dataset=str(data))


def test_a_changed_dataset_is_detected(tmp_path, review_checkpoint):
    moved = copy(review_checkpoint, tmp_path / "ckpt")
    manifest = json.loads((moved / "manifest.json").read_text())
    manifest["dataset"]["split_hashes"]["dev"] = "0123456789abcdef"
    (moved / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EvaluationError, match="changed since training"):
        plan([moved], tmp_path)


def test_mlm_vocabulary_must_match_the_classifier(tmp_path, review_checkpoint):
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "good", "bad"]) + "\n")
    mlm_dir = tmp_path / "other-mlm"
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(mlm_dir)
    BertForMaskedLM(BertConfig(vocab_size=9, hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                               intermediate_size=8)).save_pretrained(mlm_dir)
    with pytest.raises(EvaluationError, match="vocabulary"):
        plan([review_checkpoint], tmp_path, worker=WorkerConfig(mlm=str(mlm_dir)))


def test_bad_settings_are_refused(tmp_path, review_checkpoint):
    with pytest.raises(EvaluationError, match="empty"):
        plan([review_checkpoint], tmp_path, num_examples=0)
    with pytest.raises(EvaluationError, match="split 'validation' is unknown"):
        plan([review_checkpoint], tmp_path, split="validation")
    with pytest.raises(KeyError, match="did you mean 'textattack'"):
        plan([review_checkpoint], tmp_path, protocol="text-attack")
    with pytest.raises(EvaluationError, match="cannot be loaded"):
        plan([review_checkpoint], tmp_path, worker=WorkerConfig(mlm=str(tmp_path / "no-such-mlm")))
    with pytest.raises(EvaluationError, match="cannot be loaded"):
        plan([review_checkpoint], tmp_path, worker=WorkerConfig(encoder=str(tmp_path)))


def test_samples_are_nested_and_seeded(tmp_path, review_checkpoint):
    examples = plan([review_checkpoint], tmp_path, num_examples=100).shards
    pool = [e for s in examples for e in s.examples]
    assert select_examples(pool, 3, seed=1) == select_examples(pool, 6, seed=1)[:3]
    assert select_examples(pool, 6, seed=1) != select_examples(pool, 6, seed=2)
    assert len(select_examples(pool, 100, seed=1)) == len(pool) == 8


def test_resume_plans_only_what_the_store_lacks(tmp_path, review_checkpoint, make_row):
    first = plan([review_checkpoint], tmp_path)
    assert first.examples_total == 8 and first.examples_already_done == 0
    assert [len(s.examples) for s in first.shards] == [3, 3, 2]
    target = first.targets[0]
    done = [e.id for e in first.shards[0].examples] + [first.shards[2].examples[0].id]
    ResultStore(tmp_path / "store").write_examples(
        [make_row(i, checkpoint=target.checkpoint_hash, key=target.attack_key) for i in done])
    second = plan([review_checkpoint], tmp_path)
    assert second.examples_already_done == 4
    remaining = [e.id for s in second.shards for e in s.examples]
    assert sorted(remaining) == sorted({e.id for s in first.shards for e in s.examples} - set(done))
    other_key = plan([review_checkpoint], tmp_path, protocol="textattack")
    assert other_key.examples_already_done == 0  # another protocol is another key


def test_the_attack_key_changes_when_the_word_vectors_change(tmp_path, review_checkpoint, monkeypatch):
    import attack_workers.lexicon.vectors as lexicon_module

    (before,) = plan([review_checkpoint], tmp_path / "a").targets
    real = lexicon_module.load_lexicon

    class Rebuilt:
        content_hash = "0123456789abcdef"  # other vectors: another content hash

    monkeypatch.setattr(lexicon_module, "load_lexicon", lambda spec=None: Rebuilt())
    (after,) = plan([review_checkpoint], tmp_path / "b").targets
    assert after.attack_key != before.attack_key
    monkeypatch.setattr(lexicon_module, "load_lexicon", real)
    (again,) = plan([review_checkpoint], tmp_path / "c").targets
    assert again.attack_key == before.attack_key


def test_the_attack_key_names_the_attack_code_and_textattack_version(tmp_path, review_checkpoint, monkeypatch):
    """Rows of changed attack code (ATTACK_CODE_VERSION) or another TextAttack are never reused on resume."""
    import attack_workers.attack.attack_version as attack_version

    (before,) = plan([review_checkpoint], tmp_path / "a").targets
    monkeypatch.setattr(attack_version, "ATTACK_CODE_VERSION", attack_version.ATTACK_CODE_VERSION + 1)
    (bumped,) = plan([review_checkpoint], tmp_path / "b").targets
    monkeypatch.undo()
    real_version = attack_version.metadata.version
    monkeypatch.setattr(attack_version.metadata, "version",
                        lambda name: "0.3.12" if name == "textattack" else real_version(name))
    (upgraded,) = plan([review_checkpoint], tmp_path / "c").targets
    assert len({before.attack_key, bumped.attack_key, upgraded.attack_key}) == 3
