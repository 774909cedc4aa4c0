"""Reuse by training key (``tune.study``): a sweep over a store trains only the cells it lacks; ``--max-minutes``.

Run inside the private network namespace: ``../shared/bin/offline .venv/bin/python -m pytest tests/tune``.
"""

from __future__ import annotations

import re
import shutil

import yaml

from attack_workers.results.export import export_store, import_store
from attack_workers.results.store import ResultStore
from tune.config import load_sweep, sweep_from_dict
from tune.study import StoredCell, decide, planned_cells, study_status
from tune.study import main as study_main
from tune.sweep import main, run_sweep
from vda.config import TrainConfig
from vda.training_version import training_key


def test_the_training_key_follows_what_changes_the_weights_and_the_code_version():
    base = TrainConfig().to_dict()
    key = training_key(base, 1)

    def changed(**fields):
        cfg = {**base, **{k: v for k, v in fields.items() if k != "vda"}}
        if "vda" in fields:
            cfg["vda"] = {**base["vda"], **fields["vda"]}
        return training_key(cfg, 1)

    assert changed(num_threads=4) == changed(eval_batch_size=8) == changed(vda={"cache_mb": 0}) == key
    assert changed(vda={"shared_candidates": False}) == changed(keep_epoch_checkpoints=True) == key
    assert len({key, changed(seed=1), changed(vda={"sigma": 0.5}), changed(lr=1e-5), changed(model="x"),
                training_key(base, 2)}) == 6


def test_a_stored_cell_is_reused_unless_its_checkpoint_is_gone_with_its_attacks_incomplete():
    def cell(exists, complete):
        return {"k": StoredCell("k", "run", "h", "/gone", {"dev_acc": 0.5}, 1.0, exists, complete)}

    assert decide("other", cell(True, True), False).action == "train"
    assert decide("k", cell(True, False), False).action == "reuse"  # attacked from its checkpoint
    assert decide("k", cell(False, True), False).action == "reuse"  # complete in the store
    assert decide("k", cell(False, False), False).action == "missing"
    assert decide("k", cell(False, False), True).action == "train"  # --retrain-missing


def test_a_gone_checkpoint_is_complete_only_when_every_attack_pass_is():
    import pandas as pd

    from tune.study import attacks_complete

    attack = load_sweep("default").sweep.attack  # vda-paper (200 examples), strict x3 (80)

    def row(protocol, name, n):
        return {"checkpoint_hash": "h", "protocol": protocol, "attack": name, "split": "dev", "pending_examples": 0,
                "num_examples": n}

    paper = [row("vda-paper", "bert-attack", 200)]
    strict = [row("strict", name, 80) for name in ("bert-attack", "textfooler", "pwws")]
    assert attacks_complete(pd.DataFrame(paper + strict), "h", attack)
    assert not attacks_complete(pd.DataFrame(paper), "h", attack)  # the strict pass is missing
    assert not attacks_complete(pd.DataFrame(paper + strict[:2]), "h", attack)  # one of its attacks is
    assert not attacks_complete(pd.DataFrame([row("vda-paper", "bert-attack", 80)] + strict), "h", attack)


def test_a_grid_is_resolved_into_its_cells_and_a_sampled_space_is_not():
    spec = load_sweep("default", ["search.vda.sigma={grid: [0.5, 1.0, 2.0]}", "sweep.num_samples=2"])
    cells = planned_cells(spec, 1)
    assert len(cells) == 3 * len(spec.variants)  # repeats of one config are one cell
    assert any("vda.sigma=0.5" in label for label in cells.values())
    assert planned_cells(load_sweep("default", ["search.vda.sigma={choice: [0.5, 1.0]}"]), 1) is None


def test_a_sweep_trains_only_the_cells_its_store_lacks(tmp_path, tiny_model_dir, make_sweep, local_ray, capsys,
                                                       monkeypatch):
    raw = make_sweep(tmp_path / "results", tiny_model_dir, variants={"vda": {}})
    first = run_sweep(sweep_from_dict(raw, "test"), progress=False)
    assert (first.trained, first.reused, first.num_trials) == (1, 0, 1) and not first.unattacked
    out, store = first.output_dir, ResultStore(first.output_dir / "store")
    rows, table = store.load_examples(), (out / "summary.md").read_text()
    assert store.load_checkpoints()["training_key"].notna().all()

    # a replaced machine: the study was exported, the results directory is gone, the export is imported
    # (the checkpoint is gone, its attack complete)
    export_store(store.root, tmp_path / "studies" / "tiny")
    shutil.rmtree(out)
    import_store(tmp_path / "studies" / "tiny", store.root)
    again = run_sweep(sweep_from_dict(raw, "test"), progress=False)
    assert (again.trained, again.reused, again.num_trials) == (0, 1, 1)  # Tune: one trial, from the store
    assert not again.failed_trials and not again.unattacked
    assert (out / "summary.md").read_text() == table
    assert store.load_examples().equals(rows)  # nothing attacked again

    raw["variants"]["baseline"] = {"vda.lam": 0.0}  # the grid grows by one value (attacks off: faster)
    raw["sweep"].update(objectives=["dev_acc"], attack={"enabled": False})
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump(raw))
    grown = run_sweep(load_sweep(config), progress=False)
    assert (grown.trained, grown.reused) == (1, 1) and not grown.unattacked
    assert grown.status.format().startswith("study tiny: 2 cell(s), 2 done, 0 missing")
    capsys.readouterr()
    assert study_main(["status", "--config", str(config), "--store", str(store.root)]) == 0  # runs nothing
    printed = capsys.readouterr().out
    assert printed.startswith("study tiny: 2 cell(s), 2 done, 0 missing") and "variant=baseline" in printed
    assert re.search(r"measured time per cell: [0-9]+ s .*predicted remaining: 0\.0 min for 0 cell", printed)

    # a new training-code version: no stored cell matches, so every cell would train; under a spent
    # budget none starts, and the sweep still exits 0 counting them missing
    monkeypatch.setattr("vda.training_version.training_code_version", lambda record=None: 99)
    capsys.readouterr()
    assert main(["--config", str(config), "--max-minutes", "0", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "0 trained, 0 reported from the store, 2 not started (--max-minutes)" in printed
    assert "study tiny: 2 cell(s), 0 done, 2 missing" in printed
    assert len(store.load_checkpoints()) == 2  # one epoch per trained cell, nothing new
    assert study_status(load_sweep(config), store.root, 1).num_missing == 0
