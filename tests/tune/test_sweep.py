"""End to end on a private local Ray: a tiny sweep trains, attacks, retries a failing trial, resumes.

Run inside the private network namespace: ``../shared/bin/offline .venv/bin/python -m pytest tests/tune``.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml

from attack_workers.results.store import ResultStore
from tune.config import load_sweep, sweep_from_dict
from tune.sweep import run_sweep


def test_sweep_trains_attacks_and_reports_while_a_failing_trial_is_retried(tmp_path, tiny_model_dir, make_sweep,
                                                                           local_ray):
    broken = tmp_path / "broken.csv"  # exists (a missing file stops the sweep at load), fails in the trial
    broken.write_text("text\na review without its label column\n")
    variants = {"baseline": {"vda.lam": 0.0}, "vda": {}, "broken": {"data.dataset": str(broken)}}
    raw = make_sweep(tmp_path / "results", tiny_model_dir, variants)
    raw["fixed"]["eval_test"] = True  # as in the paper presets: the test metrics must land somewhere
    outcome = run_sweep(sweep_from_dict(raw, "test"), progress=False)

    assert outcome.num_trials == 3 and len(outcome.failed_trials) == 1
    error = (Path(outcome.experiment_path) / outcome.failed_trials[0] / "error.txt").read_text()
    assert error.count("Failure #") == 2 and "broken.csv" in error  # first run + 1 retry (max_failures=1)

    summary = ResultStore(outcome.output_dir / "store").load_summary()
    assert len(summary) == 2  # one row per attacked checkpoint: the two trials that finished
    assert sorted(summary["config.vda.lam"]) == [0.0, 1.0]
    assert summary["num_examples"].tolist() == [4, 4] and summary["metrics.dev_acc"].notna().all()
    assert summary["attack_acc"].between(0, 1).all()
    assert summary["metrics.test_acc"].between(0, 1).all()  # the attacked best checkpoints' own test metrics
    finished = summary["run_id"].str.split("-").str[0]
    last_results = [json.loads((Path(outcome.experiment_path) / t / "result.json").read_text().splitlines()[-1])
                    for t in finished]
    assert all(0 <= r["best_test_acc"] <= 1 for r in last_results)  # and in each trial's final Tune result
    assert {"summary_md", "summary_csv", "plot_pareto", "plot_hyperparameters"} <= set(outcome.files)
    assert all(p.is_file() for p in outcome.files.values())
    assert "Att Acc" in outcome.table and "vda.lam=0.0" in outcome.table


def test_interrupted_optuna_sweep_resumes_without_training_or_attacking_twice(tmp_path, tiny_model_dir, make_sweep,
                                                                               local_ray):
    import optuna

    raw = make_sweep(tmp_path / "results", tiny_model_dir, variants={}, searcher="optuna", num_samples=3,
                     objectives=["dev_acc", "attack_acc"])
    raw["search"] = {"vda.lam": {"choice": [0.0, 1.0]}, "vda.sigma": {"loguniform": [0.5, 2.0]}}
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump(raw))
    store = ResultStore(tmp_path / "results" / "tiny" / "store")

    def interrupt_after_first_attack() -> None:  # what Ctrl+C does, once a checkpoint has been attacked
        deadline = time.time() + 300
        while time.time() < deadline and store.load_examples().empty:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGINT)

    watcher = threading.Thread(target=interrupt_after_first_attack, daemon=True)
    watcher.start()
    run_sweep(load_sweep(config), progress=False)
    watcher.join()
    before = store.load_examples().set_index(["checkpoint_hash", "example_id"])["finished_at"]
    assert len(store.load_summary()) < 3, "the sweep finished before it was interrupted"

    resumed = run_sweep(load_sweep(config), resume=True, progress=False)
    after = store.load_examples().set_index(["checkpoint_hash", "example_id"])["finished_at"]
    assert resumed.num_trials == 3 and not resumed.failed_trials
    assert after.loc[before.index].equals(before)  # rows from before the interruption were not attacked again
    checkpoints = store.load_checkpoints()
    assert not checkpoints.duplicated(["run_id", "epoch"]).any()  # no epoch trained twice
    assert checkpoints["run_id"].nunique() == 3 and len(store.load_summary()) == 3

    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'results' / 'tiny' / 'optuna.db'}")
    told = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(told) == 3 and all(len(t.values) == 2 for t in told)  # both objectives, attack accuracy included
    summary = store.load_summary()
    assert sorted(t.values[1] for t in told) == pytest.approx(sorted(summary["attack_acc"]))


def test_two_attack_passes_store_both_keys_for_every_checkpoint_and_the_printed_table_labels_both(
        tmp_path, tiny_model_dir, make_sweep, local_ray, capsys):
    """Issue 29.12: every checkpoint is attacked under vda-paper (BERT-Attack) and strict (three attacks and
    their union), one attack key per attack of each pass, and the table printed at the end shows both."""
    from tune.sweep import main

    raw = make_sweep(tmp_path / "results", tiny_model_dir)
    raw["sweep"]["attack"]["passes"] = [
        {"protocol": "vda-paper", "attacks": ["bert-attack"]},
        {"protocol": "strict", "attacks": ["bert-attack", "textfooler", "pwws"], "num_examples": 2}]
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump(raw))
    assert main(["--config", str(config), "--quiet"]) == 0
    printed = capsys.readouterr().out

    summary = ResultStore(tmp_path / "results" / "tiny" / "store").load_summary()
    assert summary["checkpoint_hash"].nunique() == 2  # baseline and VDA
    for _, rows in summary.groupby("checkpoint_hash"):
        got = sorted(zip(rows["protocol"], rows["attack"], rows["num_examples"]))
        assert got == [("strict", "bert-attack", 2), ("strict", "pwws", 2), ("strict", "textfooler", 2),
                       ("strict", "union", 2), ("vda-paper", "bert-attack", 4)]
        assert rows["attack_key"].nunique() == 5 and (rows["pending_examples"] == 0).all()
    vda_paper = summary.loc[summary["protocol"] == "vda-paper", "attack_key"]
    strict = summary.loc[summary["protocol"] == "strict", "attack_key"]
    assert not set(vda_paper) & set(strict)  # the passes' rows never share a key
    rows = [line.split(" | ")[1] for line in printed.splitlines() if line.startswith("| ") and " | " in line]
    paper, readable = "vda-paper (word cos >= 0.7): bert-attack", "strict: union of bert-attack,textfooler,pwws"
    for label in (paper, readable, "strict: bert-attack", "strict: textfooler", "strict: pwws"):
        assert rows.count(label) == 2, f"not one row per checkpoint labelled {label!r}:\n{printed}"
    assert set(rows[1:5]) == {paper, readable}, printed  # the headline keys first: the paper's number, the readable one
