"""The paper-layout reproduction table: grouping over seeds, intervals, row names, published numbers."""

import logging
import re

import pandas as pd
import pytest

from analysis.reproduce import paper_numbers, reproduction_table, row_name

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
    with caplog.at_level(logging.WARNING, logger="analysis.methods"):
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
    ({"vda.lam": 0.0, "strategy.label_smoothing": 0.1}, "BERT+LS"),
    ({"vda.lam": 0.25, "strategy.confidence_penalty": 0.25}, "BERT+CP+VDA"),
    ({"vda.lam": 0.0, "strategy.label_smoothing": 0.0, "strategy.confidence_penalty": float("nan")}, "BERT"),
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


def _union_store(tmp_path, attacks_of, partial=False):
    """A store of checkpoints 'plain' (lambda 0) and 'vda' (lambda 1), seed 1, strict, union key U.

    ``attacks_of``: {checkpoint: {attack: statuses}} with f = failed, s = succeeded, p = spared over e0, e1, ...
    ``partial``: plain's two attacks are still running, bert-attack has finished e0-e1 and pwws e2-e3
    (all four planned): no example has both rows yet.
    """
    from attack_workers.results.store import ResultStore
    from tests.attack_workers.conftest import example_row

    store = ResultStore(tmp_path)
    for name, lam in (("plain", 0.0), ("vda", 1.0)):
        for attack, statuses in attacks_of[name].items():
            ids = [f"e{i}" for i in range(len(statuses))]
            done = ids if not (partial and name == "plain") else ids[:2] if attack == "bert-attack" else ids[2:]
            store.record_plan(name, f"k-{attack}", ids)
            store.write_results([example_row(i, {"f": "failed", "s": "succeeded", "p": "spared"}[c], checkpoint=name,
                                             key=f"k-{attack}", attack=attack, union="U", protocol="strict")
                                 for i, c in zip(ids, statuses) if i in done])
        store.write_checkpoint({"checkpoint_hash": name, "path": f"/runs/{name}", "run_id": name, "epoch": 1,
                                "created": 1.0, "recorded_at": 1.0, "metrics.dev_acc": 0.8,
                                "config.strategy.name": "plain", "config.vda.lam": lam, "config.vda.mode": "sharp",
                                "config.seed": 1, "config.data.dataset": "mr"})
    return store


def test_unions_of_other_attack_sets_are_not_averaged_or_paired(tmp_path):
    """Issue 29.1: plain attacked by bert-attack + pwws, VDA by all three, one union key.

    Before, both union rows had one key: Δ Att Acc = 3/4 - 1/4 = +0.500 compared two attack sets.
    """
    store = _union_store(tmp_path, {"plain": {"bert-attack": "ffss", "pwws": "fsfs"},
                                    "vda": {"bert-attack": "ffff", "pwws": "ffsf", "textfooler": "ffff"}})
    table = reproduction_table(store.load_summary(), store.load_examples()).set_index("Method")
    vda = table.loc["BERT+VDA"]
    assert vda["attacks"] == "bert-attack,textfooler,pwws" and table.loc["BERT", "attacks"] == "bert-attack,pwws"
    assert vda["Δ Att Acc"] == "no base"  # no union of these three attacks on the base
    assert _interval(vda["bert-attack Δ"])[0] == pytest.approx(0.5)  # one attack, one key: paired as before
    assert _interval(vda["pwws Δ"])[0] == pytest.approx(0.25)


def test_a_partial_union_prints_as_partial(tmp_path):
    """Issue 29.4: no example of plain has both attacks' rows: its union has n = 0 (before: NaN, and _span raised)."""
    store = _union_store(tmp_path, {"plain": {"bert-attack": "ffss", "pwws": "fsfs"},
                                    "vda": {"bert-attack": "ffff", "pwws": "ffsf"}}, partial=True)
    summary = store.load_summary()
    table = reproduction_table(summary, store.load_examples()).set_index("Method")
    assert table.loc["BERT", "examples"] == "0 (4 pending)" and table.loc["BERT", "Att Acc"] == "nan"
    assert table.loc["BERT+VDA", "examples"] == "4" and table.loc["BERT+VDA", "Δ Att Acc"] == "pending"


def test_two_keys_of_one_protocol_are_labelled_apart():
    """Issue 29.6: the same checkpoints under strict twice (another attack-code version: the key differs,
    no printed parameter does). Before: two rows both labelled 'strict'."""
    summary, examples = _store()
    summary = summary.assign(protocol="strict")
    again = summary.assign(attack_key="key-v2")
    examples = pd.concat([examples, examples.assign(attack_key="key-v2")])
    table = reproduction_table(pd.concat([summary, again], ignore_index=True), examples)
    labels = table.loc[table["Method"] == "BERT", "protocol"].tolist()
    assert sorted(labels) == ["strict (key key)", "strict (key key-v2)"]
    threshold = summary.assign(protocol="vda-paper", **{"attack.word_similarity_threshold": 0.7})
    assert set(reproduction_table(threshold, examples[examples["attack_key"] == "key"])["protocol"]) == {
        "vda-paper (word cos >= 0.7)"}


def test_every_configuration_of_a_seed_is_its_own_row(caplog):
    """Issue 29.6: a lambda grid at one seed (an Optuna store). Before, one VDA trial per seed was kept
    and the other dropped with a warning."""
    summary, examples = _store(seeds=1)
    summary, examples = _add_checkpoint(summary, examples, "plain-1.0-1", "lam-0.4", "ff" + "s" * 8,
                                        run_id="lam-0.4", **{"config.vda.lam": 0.4})
    with caplog.at_level(logging.WARNING, logger="analysis.methods"):
        table = reproduction_table(summary, examples)
    assert "repeat a seed" not in caplog.text
    vda = table[table["Method"] == "BERT+VDA"].set_index("configuration")
    assert list(vda.index) == ["vda.lam=0.4", "vda.lam=1.0"]
    assert vda.loc["vda.lam=0.4", "Att Acc"].startswith("0.200 ")
    assert vda.loc["vda.lam=1.0", "Att Acc"].startswith("0.200 ")
    assert _interval(vda.loc["vda.lam=0.4", "Δ Att Acc"])[0] == pytest.approx(0.1)
    assert table.set_index("Method").loc["BERT", "configuration"] == ""


def test_union_only_per_attack_accuracy_is_the_summarys_and_says_so(tmp_path):
    """Issue 29.3: --union-only: pwws spared e2 and e3, which bert-attack broke. Its Att Acc leaves them
    out, as the summary does: 1 of 2 (before: 1 of 4, spared scored as broken, unlabelled)."""
    store = _union_store(tmp_path, {"plain": {"bert-attack": "ffss", "pwws": "fspp"},
                                    "vda": {"bert-attack": "ffss", "pwws": "ffpp"}})
    summary = store.load_summary()
    table = reproduction_table(summary, store.load_examples()).set_index("Method")
    cell = table.loc["BERT", "pwws Att Acc"]
    assert cell.startswith("0.500 ") and cell.endswith("(2 spared: not attacked, left out of n)")
    per_checkpoint = summary.query("attack == 'pwws' and checkpoint_hash == 'plain'").iloc[0]
    assert per_checkpoint["attack_acc"] == 0.5 and per_checkpoint["num_spared"] == 2
    assert table.loc["BERT", "Att Acc"].startswith("0.250 ")  # the union: e0 only survives both


def test_label_smoothing_and_the_confidence_penalty_are_paired_with_plain():
    """Issue 27: every arm of the mechanism study has its Δ vs plain. Before, a label-smoothing run was
    a base row of its own (no Δ), and two smoothing weights would each be their own base."""
    summary, examples = _store(seeds=2)
    summary = summary.assign(**{"config.strategy.label_smoothing": 0.0})
    for seed, statuses in ((1, "fff" + "s" * 7), (2, "ffff" + "s" * 6)):  # 2 more robust than BERT per seed
        summary, examples = _add_checkpoint(summary, examples, f"plain-0.0-{seed}", f"ls-{seed}", statuses,
                                            run_id=f"ls-{seed}", **{"config.strategy.label_smoothing": 0.1})
    table = reproduction_table(summary, examples).set_index("Method")
    assert table.loc["BERT+LS", "configuration"] == "strategy.label_smoothing=0.1"
    assert _interval(table.loc["BERT+LS", "Δ Att Acc"])[0] == pytest.approx(0.2)
    assert table.loc["BERT", "configuration"] == "strategy.label_smoothing=0.0"
    assert _interval(table.loc["BERT+VDA", "Δ Att Acc"])[0] == pytest.approx(0.1)  # VDA still pairs with plain
