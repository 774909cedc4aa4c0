"""The attack pipeline driven through its Tune hooks on a private 2-CPU local Ray.

Failures are injected where they happen in real sweeps: the copy of a checkpoint from remote
storage, and a programming error while a checkpoint is attacked. The pool's growth onto the CPU
the trials freed is checked with a Ray actor standing in for the trial.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import ray
from ray import tune

import vda.mlm
from attack_workers.results.store import ResultStore
from tune.config import sweep_from_dict
from tune.pipeline import AttackPipeline, _Attacks, unattacked_checkpoints
from tune.space import train_config
from vda.train import fit


class _Searcher:
    """Records what the pipeline tells (``ObjectiveOptunaSearch.tell``'s signature)."""

    def __init__(self) -> None:
        self.told: dict[str, dict[str, float] | None] = {}

    def tell(self, trial_id: str, values: dict[str, float] | None) -> None:
        self.told[trial_id] = values


def _end_trial(pipeline: AttackPipeline, trial_id: str, checkpoint: Path) -> None:
    """One trial reports one best checkpoint and ends."""
    trial = SimpleNamespace(trial_id=trial_id, status="TERMINATED",
                            last_result={"epoch": 1, "dev_acc": 0.5, "dev_loss": 0.7, "is_best": 1})
    pipeline.on_checkpoint(1, [], trial, tune.Checkpoint.from_directory(str(checkpoint)))
    pipeline.on_trial_complete(1, [], trial)


def _finish_trial(pipeline: AttackPipeline, searcher: _Searcher, trial_id: str, checkpoint: Path) -> None:
    """One trial reports one best checkpoint and ends; Tune's loop turns until its objectives are told."""
    _end_trial(pipeline, trial_id, checkpoint)
    deadline = time.time() + 300  # the attack worker starts with the first trial; slow on a loaded CI box
    while trial_id not in searcher.told and time.time() < deadline:
        pipeline.on_step_begin(1, [])
        time.sleep(0.2)
    assert trial_id in searcher.told, f"trial {trial_id} was never told"


def test_failed_copies_and_bugs_are_listed_and_later_checkpoints_still_attacked(tmp_path, tiny_model_dir, make_sweep,
                                                                                local_ray, monkeypatch):
    raw = make_sweep(tmp_path / "results", tiny_model_dir, {"vda": {}}, objectives=["attack_acc", "dev_acc"])
    raw["sweep"]["attack"]["mlm"] = "default"  # its word lexicon is built once per machine, not once per session
    spec = sweep_from_dict(raw, "test")
    run = fit(train_config(spec.fixed, {"vda.lam": 0.0}, "test"), tmp_path / "run", progress=False)
    good = run.run_dir / "last"
    remote = Path(shutil.copytree(good, tmp_path / "remote-copy-fails"))
    buggy = Path(shutil.copytree(good, tmp_path / "hits-a-bug"))
    same = Path(shutil.copytree(good, tmp_path / "same-content"))
    local_path = _Attacks._local_path

    def injected(self, path: str) -> str:
        if Path(path).name == "remote-copy-fails":
            raise OSError("simulated: connection reset while downloading the checkpoint")
        if Path(path).name == "hits-a-bug":
            raise TypeError("simulated programming error")
        return local_path(self, path)

    monkeypatch.setattr(_Attacks, "_local_path", injected)
    load_mlm = vda.mlm.load_mlm
    mlm_loads: list[str] = []

    def counted_load_mlm(spec: str, *args, **kwargs):
        mlm_loads.append(spec)
        return load_mlm(spec, *args, **kwargs)

    monkeypatch.setattr(vda.mlm, "load_mlm", counted_load_mlm)
    out = tmp_path / "results" / "tiny"
    out.mkdir(parents=True)
    searcher = _Searcher()
    pipeline = AttackPipeline(spec, spec.sweep.attack, out, searcher, progress=False)
    pipeline.setup()
    for trial_id, checkpoint in (("t-remote", remote), ("t-bug", buggy), ("t-good", good), ("t-same", same)):
        _finish_trial(pipeline, searcher, trial_id, checkpoint)
    pipeline.on_experiment_end([SimpleNamespace(status="TERMINATED")] * 4)

    assert searcher.told["t-remote"] is None and searcher.told["t-bug"] is None  # failed, not left open
    assert 0 <= searcher.told["t-good"]["attack_acc"] <= 1  # the pipeline survived both and attacked the last one
    assert searcher.told["t-same"] == searcher.told["t-good"]  # planned too; the store had every example
    assert mlm_loads == ["default"]  # by the planner, once for the whole sweep (the workers load theirs)
    unattacked = {u.trial_id: u for u in unattacked_checkpoints(out)}
    assert set(unattacked) == {"t-remote", "t-bug"}
    assert "cannot copy it from storage" in unattacked["t-remote"].reason
    assert "TypeError: simulated programming error" in unattacked["t-bug"].reason
    store = ResultStore(out / "store")
    assert len(store.load_summary()) == 1
    failures = store.load_failures()  # the copy failure is the checkpoint's record; the bug is not blamed on it
    assert list(failures["path"]) == [str(remote)] and "connection reset" in failures["error"].iloc[0]


@ray.remote(num_cpus=1)
class _Trial:
    """Holds a CPU the way a running trial does."""

    def ready(self) -> bool:
        return True


def test_the_pool_grows_onto_the_cpu_the_last_trial_freed(tmp_path, tiny_model_dir, make_sweep, local_ray, caplog):
    raw = make_sweep(tmp_path / "results", tiny_model_dir, {"vda": {}}, objectives=["attack_acc", "dev_acc"])
    # Enough work to outlast the start of a second worker by far (20-25 s here while another job loads the machine)
    raw["fixed"]["data"]["max_eval_examples"] = 128
    raw["sweep"]["attack"].update(mlm="default", num_examples=128, shard_size=4, workers=1)
    spec = sweep_from_dict(raw, "test")
    out = tmp_path / "results" / "tiny"
    out.mkdir(parents=True)
    searcher = _Searcher()
    trial = _Trial.remote()
    ray.get(trial.ready.remote())  # the trial trains on one CPU, the attack worker gets the other
    pipeline = AttackPipeline(spec, spec.sweep.attack, out, searcher, progress=False)
    pipeline.setup()
    run = fit(train_config(spec.fixed, {}, "test"), tmp_path / "run", progress=False)
    _end_trial(pipeline, "t-last", run.run_dir / "best")
    pipeline.on_step_begin(1, [])
    ray.kill(trial)  # Tune stops the last trial's actor before it ends the experiment
    deadline = time.time() + 60
    while ray.available_resources().get("CPU", 0) < 1 and time.time() < deadline:
        time.sleep(0.1)
    with caplog.at_level(logging.INFO, logger="tune.pipeline"):
        pipeline.on_experiment_end([SimpleNamespace(status="TERMINATED")])

    assert "attack pool: 1 -> 2 workers, trials finished" in caplog.text
    assert 0 <= searcher.told["t-last"]["attack_acc"] <= 1 and not unattacked_checkpoints(out)
    rows = ResultStore(out / "store").load_examples()
    assert len(rows) == 128 and rows["worker"].nunique() == 2  # the new worker attacked too


def test_a_checkpoint_is_unattacked_once_with_the_reason_of_each_pass_that_failed():
    """Issue 29.12: with two attack passes, one entry per checkpoint; a pass's reason is named by its protocol
    unless every pass failed alike (a failed copy)."""
    from tune.pipeline import Unattacked, _Job

    attacks = object.__new__(_Attacks)  # only the bookkeeping: no planner, no pool
    attacks._evals = [SimpleNamespace(protocol="vda-paper"), SimpleNamespace(protocol="strict")]
    attacks._objective, attacks._measured, attacks._unattacked = "strict", [], {}
    ref = SimpleNamespace(trial_id="t", path="/ckpt-a")
    copy_failed = [_Job(ref, tell=p == "strict", protocol=p) for p in ("vda-paper", "strict")]
    attacks._settle(copy_failed, None, "cannot copy it from storage")
    other = SimpleNamespace(trial_id="u", path="/ckpt-b")
    attacks._settle([_Job(other, tell=False, protocol="strict")], None, "2 example(s) not attacked")

    assert attacks.unattacked() == [Unattacked("t", "/ckpt-a", "cannot copy it from storage"),
                                    Unattacked("u", "/ckpt-b", "strict: 2 example(s) not attacked")]
    assert attacks.measured() == [("t", None)]  # told once, by the objective pass's job
