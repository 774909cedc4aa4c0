"""The paper-layout reproduction table: grouping over seeds, intervals, row names, published numbers."""

import logging
import re

import pandas as pd
import pytest

from tune.reproduce import paper_numbers, reproduction_table, row_name

TWO_SEEDS = "(2 seeds: example-level only, no seed variance)"


def _store(dataset="mr", gain=1, seeds=2):
    """(summary, per-example rows) of two (or three) seeds of BERT, BERT+VDA and FreeLB+VDA, 10 examples each.

    A checkpoint survives the attack on its first k examples: BERT on 1 (seed 1), 2 (seed 2) and
    3 (seed 3), VDA on ``gain`` more, so VDA never loses an example BERT survives. FreeLB's seed-2
    attack is still running (9 examples) and FreeLB has no base run. Each is its run's best (and
    only attacked) epoch.
    """
    summary, examples = [], []
    for seed, (clean, robust) in enumerate([(0.80, 1), (0.84, 2), (0.82, 3)][:seeds], start=1):
        for strategy, lam in (("plain", 0.0), ("plain", 1.0), ("freelb", 1.0)):
            checkpoint, n = f"{strategy}-{lam}-{seed}", 10 - (seed == 2 and strategy == "freelb")
            k = robust + gain * int(lam)
            examples += _outcomes(checkpoint, "f" * k + "s" * (n - k))
            summary.append({"checkpoint_hash": checkpoint, "attack_key": "key", "protocol": "vda-paper",
                            "run_id": checkpoint, "epoch": 2, "created": 100.0, "metrics.dev_acc": 0.8,
                            "config.strategy.name": strategy,
                            "config.vda.lam": lam, "config.vda.mode": "sharp", "config.seed": seed,
                            "config.data.dataset": dataset, "clean_acc": clean, "attack_acc": k / n,
                            "avg_queries": 50.0 + seed, "perturbed_pct": 15.0, "num_examples": n})
    return pd.DataFrame(summary), pd.DataFrame(examples)


def _outcomes(checkpoint, statuses):
    """Per-example rows: f = failed (survived the attack), s = succeeded, for e0, e1, ..."""
    return [{"checkpoint_hash": checkpoint, "attack_key": "key", "example_id": f"e{i}",
             "status": {"f": "failed", "s": "succeeded"}[c]} for i, c in enumerate(statuses)]


def _interval(cell):
    """'+0.100 [+0.000, +0.200] (2 seeds: ...)' -> (0.1, 0.0, 0.2)."""
    value, low, high = re.match(r"(\S+) \[(\S+), (\S+)\]", cell).groups()
    return float(value), float(low), float(high)


def test_rows_are_grouped_over_seeds_with_the_papers_numbers_beside():
    table = reproduction_table(*_store()).set_index("Method")  # the dataset comes from the store's data.dataset
    assert list(table.index) == ["BERT", "BERT+VDA", "FreeLB+VDA"]
    bert = table.loc["BERT"]
    assert bert["seeds"] == 2 and bert["mode"] == "-" and bert["examples"] == "10"
    assert table.loc["FreeLB+VDA", "examples"] == "9-10"  # an attack still running
    assert bert["Ori Acc"] == "0.820 ± 0.028"  # the sample SD of 0.80 and 0.84: 0.02 * sqrt(2)
    published = paper_numbers("main", "mr")
    assert [bert[f"paper {c}"] for c in ("Ori Acc", "Att Acc", "Q Num", "Perturb")] == list(published["BERT"])
    assert "Flagged" not in table


def test_attack_accuracy_pools_the_seeds_with_an_interval():
    table = reproduction_table(*_store()).set_index("Method")
    value, low, high = _interval(table.loc["BERT", "Att Acc"])
    assert value == 0.15 and low < value < high  # 1 + 2 robust of 20
    assert table.loc["BERT", "Att Acc"].endswith(TWO_SEEDS)
    value, low, high = _interval(table.loc["FreeLB+VDA", "Att Acc"])
    assert value == pytest.approx(5 / 18, abs=5e-4)  # 2 and 3 of the 9 examples both seeds were attacked on


def test_delta_is_paired_with_the_same_seeds_base_run():
    deltas = reproduction_table(*_store()).set_index("Method")["Δ Att Acc"]
    assert deltas["BERT"] == "" and deltas["FreeLB+VDA"] == "no base"
    delta, low, high = _interval(deltas["BERT+VDA"])
    assert delta == 0.1 and low < delta < high  # one more robust example of 10 per seed
    assert deltas["BERT+VDA"].startswith("+") and deltas["BERT+VDA"].endswith(TWO_SEEDS)
    delta, low, high = _interval(reproduction_table(*_store(gain=6)).set_index("Method").loc["BERT+VDA", "Δ Att Acc"])
    assert delta == 0.6 and 0 < low < delta < high  # six more of ten for both seeds: the interval excludes 0


def test_three_seeds_have_a_seed_level_interval_and_unpaired_seeds_are_counted():
    summary, examples = _store(seeds=3)
    table = reproduction_table(summary, examples).set_index("Method")
    assert re.fullmatch(r"\+0\.100 \[\S+, \S+\]", table.loc["BERT+VDA", "Δ Att Acc"])  # nothing to qualify
    assert table.loc["BERT+VDA", "Ori Acc"] == "0.820 ± 0.020"
    without = summary["checkpoint_hash"] != "plain-0.0-3"  # BERT's seed 3 is missing: VDA's seed 3 has no pair
    cell = reproduction_table(summary[without], examples).set_index("Method").loc["BERT+VDA", "Δ Att Acc"]
    assert cell.endswith("(2 of 3 seeds paired: example-level only, no seed variance)")
    assert _interval(cell)[0] == 0.1


def _add_checkpoint(summary, examples, like, name, statuses, **changes):
    """``summary`` and ``examples`` with one more checkpoint: ``like``'s row with ``changes``."""
    row = summary[summary["checkpoint_hash"] == like].assign(checkpoint_hash=name, **changes)
    return pd.concat([summary, row], ignore_index=True), pd.concat([examples, pd.DataFrame(_outcomes(name, statuses))])


def test_an_epoch_is_not_a_seed_and_a_retrained_seed_counts_once(caplog):
    summary, examples = _store(seeds=3)
    expected = reproduction_table(summary, examples)
    for checkpoint in summary["checkpoint_hash"]:  # every epoch attacked: epochs 1 and 3 lose to epoch 2
        summary, examples = _add_checkpoint(summary, examples, checkpoint, f"{checkpoint}@1", "s" * 10,
                                            epoch=1, **{"metrics.dev_acc": 0.7})
        summary, examples = _add_checkpoint(summary, examples, checkpoint, f"{checkpoint}@3", "f" * 10,
                                            epoch=3, **{"metrics.dev_acc": 0.8})  # equal: not an improvement
    # seed 1 of BERT+VDA trained again earlier, in another run: the latest run stands for the seed
    summary, examples = _add_checkpoint(summary, examples, "plain-1.0-1", "rerun", "s" * 10, run_id="old-run",
                                        created=50.0)
    with caplog.at_level(logging.WARNING, logger="tune.reproduce"):
        table = reproduction_table(summary, examples)
    pd.testing.assert_frame_equal(table, expected)
    assert "1 run(s) repeat a seed" in caplog.text and "old-run" in caplog.text
    # the same rerun, now the later one: it replaces the seed's checkpoint (seed 1 loses its gain and more)
    summary.loc[summary["checkpoint_hash"] == "rerun", "created"] = 200.0
    delta = reproduction_table(summary, examples).set_index("Method").loc["BERT+VDA", "Δ Att Acc"]
    assert _interval(delta)[0] == pytest.approx((-0.1 + 0.1 + 0.1) / 3, abs=5e-4)


def test_a_base_run_attacked_on_other_examples_is_an_error():
    summary, examples = _store()
    other = examples["checkpoint_hash"] == "plain-0.0-1"
    examples.loc[other, "example_id"] = "x" + examples.loc[other, "example_id"]
    with pytest.raises(ValueError, match="plain-1.0-1 vs plain-0.0-1"):
        reproduction_table(summary, examples)


def test_the_flagged_share_is_shown_when_audited():
    summary, examples = _store()
    summary["flagged_share"] = [0.1, 0.2, float("nan"), 0.3, 0.4, float("nan")]
    flagged = reproduction_table(summary, examples).set_index("Method")["Flagged"]
    assert flagged.to_dict() == {"BERT": "0.200", "BERT+VDA": "0.300", "FreeLB+VDA": "nan"}


def test_hub_dataset_names_map_to_the_papers_and_tables_are_chosen():
    main = reproduction_table(*_store("hf:glue/mrpc")).set_index("Method").loc["BERT", "paper Ori Acc"]
    ada = reproduction_table(*_store("hf:glue/mrpc"), table="ada").set_index("Method").loc["BERT", "paper Ori Acc"]
    assert (main, ada) == (paper_numbers("main", "mrpc")["BERT"][0], paper_numbers("ada", "mrpc")["BERT"][0])
    assert main != ada  # Table 3 (test set) and Table 5 (dev set) differ
    with pytest.raises(ValueError, match="unknown paper table"):
        reproduction_table(*_store(), table="table9")


@pytest.mark.parametrize("config, label", [
    ({"vda.lam": 0.0}, "BERT"),
    ({"vda.lam": 0.0, "model": "roberta-large"}, "RoBERTa"),
    ({"vda.lam": 1.0, "model": "roberta-large"}, "RoBERTa+VDA"),
    ({"vda.lam": 1.0, "strategy.name": "smart"}, "SMART+VDA"),
    ({"vda.lam": 1.0, "vda.noise": False}, "BERT+VDA-eps"),
    ({"vda.lam": 1.0, "vda.loss": "ce"}, "BERT+CE-VDA"),
    ({"vda.lam": 1.0, "vda.augment": "argmax"}, "BERT+Argmax"),
    ({"vda.lam": 1.0, "vda.augment": "sample"}, "BERT+Sample"),
    ({"vda.lam": 0.0, "data.extra_train_file": "/x/adversarial.jsonl"}, "BERT+ADA"),
    ({"vda.lam": 1.0, "data.extra_train_file": "/x/adversarial.jsonl"}, "BERT+VDA+ADA"),
    ({"vda.lam": 1.0, "data.extra_train_file": float("nan"), "vda.augment": float("nan")}, "BERT+VDA"),
])
def test_row_names_follow_the_papers_tables(config, label):
    assert row_name(config) == label


def test_unknown_dataset_has_no_paper_columns_and_empty_store_is_an_error():
    assert not any(c.startswith("paper") for c in reproduction_table(*_store(), "my-data").columns)
    with pytest.raises(ValueError, match="no attacked checkpoints"):
        reproduction_table(pd.DataFrame(), pd.DataFrame())


def test_one_column_group_per_attack_and_the_union_as_headline(tmp_path):
    """Two attacks of one evaluation: a column group each, and Att Acc / Δ are the union's."""
    from attack_workers.results.store import ResultStore
    from tests.attack_workers.conftest import example_row

    store = ResultStore(tmp_path)
    # robust under A / B per example: plain A=ffss B=fsfs (union f---), VDA A=ffff B=ffsf (union ff-f)
    outcomes = {"plain": ("ffss", "fsfs"), "vda": ("ffff", "ffsf")}
    for name, lam in (("plain", 0.0), ("vda", 1.0)):
        for attack, key, statuses in zip(("bert-attack", "pwws"), ("kA", "kB"), outcomes[name]):
            store.write_results([example_row(f"e{i}", {"f": "failed", "s": "succeeded"}[c], checkpoint=name, key=key,
                                             attack=attack, union="U", protocol="strict")
                                 for i, c in enumerate(statuses)])
        store.write_checkpoint({"checkpoint_hash": name, "path": f"/runs/{name}", "run_id": name, "epoch": 1,
                                "created": 1.0, "recorded_at": 1.0, "metrics.dev_acc": 0.8,
                                "config.strategy.name": "plain", "config.vda.lam": lam, "config.vda.mode": "sharp",
                                "config.seed": 1, "config.data.dataset": "mr"})
    table = reproduction_table(store.load_summary(), store.load_examples()).set_index("Method")
    assert list(table.index) == ["BERT", "BERT+VDA"]
    vda = table.loc["BERT+VDA"]
    assert vda["attacks"] == "bert-attack,pwws"
    assert vda["Att Acc"].startswith("0.750 ") and table.loc["BERT", "Att Acc"].startswith("0.250 ")  # the union
    assert vda["bert-attack Att Acc"].startswith("1.000 ") and vda["pwws Att Acc"].startswith("0.750 ")
    assert _interval(vda["Δ Att Acc"])[0] == pytest.approx(0.5)  # union: [0,1,0,1] paired over e0-e3
    assert _interval(vda["bert-attack Δ"])[0] == pytest.approx(0.5)
    assert _interval(vda["pwws Δ"])[0] == pytest.approx(0.25)
