"""Table and plots from a results store alone (a store fixture written through the store's own API)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from attack_workers.results.store import EXAMPLE_COLUMNS, ResultStore
from analysis.plots import pareto_mask, rank
from analysis.summary import main

# (run id, epoch, lambda, sigma, k, dev accuracy, statuses of the 10 attacked examples): s=succeeded, f=failed, k=skipped
RUNS = [
    ("t0-baseline", 1, 0.0, 1.0, 1, 0.70, "ssssssffkk"),
    ("t0-baseline", 2, 0.0, 1.0, 1, 0.74, "sssssfffkk"),
    ("t1-vda-s0.5", 2, 1.0, 0.5, 1, 0.75, "ssssffffkk"),
    ("t2-vda-s2", 2, 1.0, 2.0, 1, 0.72, "sssfffffkk"),
    ("t3-vda-k2", 2, 1.0, 1.0, 2, 0.73, "ssfffffkkk"),
]


@pytest.fixture()
def store(tmp_path):
    store = ResultStore(tmp_path / "sweep" / "store")
    for i, (run, epoch, lam, sigma, k, dev_acc, statuses) in enumerate(RUNS):
        ckpt = f"hash{i}"
        store.write_checkpoint({
            "checkpoint_hash": ckpt, "path": f"/ckpt/{i}", "run_id": run, "epoch": epoch, "recorded_at": 0.0,
            "config.vda.lam": lam, "config.vda.sigma": sigma, "config.vda.k": k, "config.lr": 1e-4,
            "metrics.dev_acc": dev_acc, "metrics.epoch": epoch})
        if epoch == 1:
            continue  # recorded, not attacked: a point of the per-epoch curve only
        rows = []
        for j, status in enumerate(statuses):
            status = {"s": "succeeded", "f": "failed", "k": "skipped"}[status]
            row = dict.fromkeys(EXAMPLE_COLUMNS)
            row.update(checkpoint_hash=ckpt, run_id=run, attack_key="key", protocol="vda-paper",
                       attack_params=json.dumps({}), dataset="mr", split="dev", example_id=f"mr-dev-{j}", label=1,
                       clean_pred=0 if status == "skipped" else 1, adv_pred=0 if status != "failed" else 1,
                       status=status, num_queries=20 + j, num_words=10, num_whitespace_words=10,
                       words_changed=2 if status == "succeeded" else 0, original_text="a fine film",
                       perturbed_text="a fine movie", seconds=0.1, shard_id="s", worker="w", finished_at=1.0)
            rows.append(row)
        store.write_examples(rows)
    store.write_failure({"kind": "checkpoint", "path": "/ckpt/lost", "checkpoint_hash": "", "attack_key": "",
                         "example_ids": [], "error": "manifest unreadable", "attempts": 0})
    return store


def test_ranking_puts_the_pareto_front_first_then_the_first_objective():
    frame = pd.DataFrame({"attack_acc": [0.2, 0.4, 0.3, 0.1], "metrics.dev_acc": [0.9, 0.7, 0.6, 0.95]})
    assert pareto_mask(frame, ["attack_acc", "dev_acc"]).tolist() == [True, True, False, True]
    ranked = rank(frame, ["attack_acc", "dev_acc"])
    assert ranked["attack_acc"].tolist() == [0.4, 0.2, 0.1, 0.3]


def test_table_and_plots_are_regenerated_from_the_store_alone(store, capsys):
    assert main(["--store", str(store.root)]) == 0
    out = store.root.parent
    table = pd.read_csv(out / "summary.csv")
    # default objectives: attack_acc, then dev_acc; t3 (0.5, 0.73) dominates t2 (0.5, 0.72); t1 (0.4, 0.75) is on the front
    assert table["run"].tolist() == ["t3-vda-k2", "t1-vda-s0.5", "t2-vda-s2", "t0-baseline"]
    assert table["pareto"].fillna("").tolist() == ["*", "*", "", ""]
    assert table.loc[0, "Att Acc"] == pytest.approx(0.5) and table.loc[0, "Ori Acc"] == pytest.approx(0.7)
    columns = list(table.columns)  # the per-checkpoint table's columns (analysis.tables), and what ranks a row
    assert columns[columns.index("Dev Acc"):][:10] == ["Dev Acc", "n", "pending", "spared", "Ori Acc", "Att Acc",
                                                       "Att Acc low", "Att Acc high", "Q Num", "Perturb %"]
    assert table["key"].unique().tolist() == ["vda-paper: bert-attack"] and table["rank"].tolist() == [1, 2, 3, 4]
    # t3: 5 robust of 10, the Wilson interval 0.5 -+ 1.96 / 1.384 * sqrt(0.025 + 0.0096) = [0.2366, 0.7634]
    assert (table.loc[0, "Att Acc low"], table.loc[0, "Att Acc high"]) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert table["configuration"].tolist()[2:] == ["vda.lam=1.0 vda.sigma=2.0 vda.k=1", "vda.lam=0.0"]
    for name in ("accuracy_vs_hyperparameters", "accuracy_vs_epoch", "pareto_front", "param_importances"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 1000, name
    markdown = (out / "summary.md").read_text()
    assert "| rank | key | run |" in markdown and "t0-baseline" in capsys.readouterr().out
    assert "settings that varied: vda.sigma, vda.k, vda.lam" in markdown
    assert "| 0.500 [0.237, 0.763] |" in markdown  # the cells every table prints (analysis.tables.format_cells)
    assert "not attacked: /ckpt/lost: manifest unreadable" in markdown


def test_a_missing_store_is_a_clear_error(tmp_path, capsys):
    assert main(["--store", str(tmp_path / "nowhere")]) == 2
    assert "no results store here" in capsys.readouterr().err


# (protocol, attack, attack key, union key): BERT-Attack and TextFooler under strict (a union), BERT-Attack
# under vda-paper
ATTACKS = [("strict", "bert-attack", "ka", "u"), ("strict", "textfooler", "kt", "u"),
           ("vda-paper", "bert-attack", "kv", "kv")]


def _attack_store(root, attacks=ATTACKS, broken=lambda protocol, attack, j: (attack == "textfooler" and j == 0)
                  or (protocol == "vda-paper" and j < 2)):
    """Two checkpoints (baseline, VDA), each attacked on 4 examples under every (protocol, attack, key, union)."""
    store = ResultStore(root)
    for i, (run, lam) in enumerate([("t0-baseline", 0.0), ("t1-vda", 1.0)]):
        store.write_checkpoint({"checkpoint_hash": f"hash{i}", "path": f"/ckpt/{i}", "run_id": run, "epoch": 1,
                                "recorded_at": 0.0, "config.vda.lam": lam, "config.vda.sigma": 1.0,
                                "config.vda.k": 1, "metrics.dev_acc": 0.7 + i / 10, "metrics.epoch": 1})
        for protocol, attack, key, union in attacks:
            rows = []
            for j in range(4):
                hit = broken(protocol, attack, j)
                row = dict.fromkeys(EXAMPLE_COLUMNS)
                row.update(checkpoint_hash=f"hash{i}", run_id=run, attack_key=key, union_key=union, attack=attack,
                           protocol=protocol, attack_params=json.dumps({}), dataset="mr", split="dev",
                           example_id=f"mr-dev-{j}", label=1, clean_pred=1, adv_pred=0 if hit else 1,
                           status="succeeded" if hit else "failed", num_queries=5, num_words=10,
                           num_whitespace_words=10, words_changed=1 if hit else 0, original_text="a fine film",
                           perturbed_text="a fine movie" if hit else "a fine film", seconds=0.1, shard_id="s",
                           worker="w", finished_at=1.0)
                rows.append(row)
            store.write_examples(rows)
    return store


def test_plots_take_one_point_per_checkpoint_and_protocol_when_several_attacks_ran(tmp_path):
    """A store with BERT-Attack and TextFooler under strict (a union) and BERT-Attack under vda-paper."""
    from analysis.plots import headline_rows, load_results
    from analysis.report import write_html

    store = _attack_store(tmp_path / "sweep" / "store")
    summary, _, _ = load_results(store.root)
    headline = headline_rows(summary)
    assert sorted(zip(headline["protocol"], headline["attack"])) == [
        ("strict", "union"), ("strict", "union"), ("vda-paper", "bert-attack"), ("vda-paper", "bert-attack")]
    assert headline[headline["protocol"] == "strict"]["attack_acc"].tolist() == [0.75, 0.75]  # e0 fell to TextFooler
    assert main(["--store", str(store.root)]) == 0  # every plot drawn: one point per checkpoint and key
    assert not (store.root.parent / "plots" / "accuracy_vs_epoch.png").exists()  # one epoch: no Figure 4
    assert write_html(store.root, tmp_path / "report").stat().st_size > 1000


def test_every_attack_key_is_its_own_series_front_and_panel(tmp_path):
    """Issue 29.5: strict twice (code v1 key u, v2 key u2: BERT-Attack only) and vda-paper, per checkpoint.

    Before: headline_rows kept one row per (checkpoint, protocol) and dropped the v2 key; the Pareto
    front over every row starred single attacks, so the union could not be starred; Figure 3 pooled
    strict and vda-paper of one setting into one point.
    """
    from analysis.plots import _pooled, headline_rows, load_results, plot_hyperparameters, rank, varied_settings

    attacks = [*ATTACKS, ("strict", "bert-attack", "kb", "u2")]
    store = _attack_store(tmp_path / "store", attacks)
    summary, _, _ = load_results(store.root)
    headline = headline_rows(summary)
    assert sorted(headline["attack_key"].str[:2].tolist()).count("kb") == 2  # the v2 key kept for both checkpoints
    assert len(headline) == 6
    ranked = rank(summary, ["attack_acc", "dev_acc"])
    starred = ranked[ranked["pareto"]]
    assert "union" in set(starred["attack"])  # the union row competes only with union rows
    assert ranked.groupby("key")["pareto"].any().all()  # every key has its own front
    first = ranked["key"].iloc[0]  # headline keys first, each protocol's keys told apart
    assert first.startswith("strict (key u") and first.endswith("union of bert-attack,textfooler")
    with pytest.raises(ValueError, match="several attack keys"):
        _pooled(ranked[ranked["checkpoint_hash"] == "hash1"], "attack_acc")
    assert varied_settings(headline) == ["config.vda.lam"]  # sigma and k took one value: no panel of one point
    assert plot_hyperparameters(headline, tmp_path / "fig3.png").stat().st_size > 1000
    assert plot_hyperparameters(headline[headline["run_id"] == "t1-vda"], tmp_path / "none.png") is None
