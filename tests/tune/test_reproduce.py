"""The paper-layout reproduction table: grouping over seeds, row names, published numbers."""

import pandas as pd
import pytest

from tune.reproduce import reproduction_table, row_name


def _summary(dataset="mr"):
    rows = []
    for seed, (clean, attack) in enumerate([(0.80, 0.10), (0.84, 0.20)], start=1):
        for strategy, lam in (("plain", 0.0), ("plain", 1.0), ("freelb", 1.0)):
            rows.append({"config.strategy.name": strategy, "config.vda.lam": lam, "config.vda.mode": "sharp",
                         "config.seed": seed, "config.data.dataset": dataset, "clean_acc": clean,
                         "attack_acc": attack + lam / 10, "avg_queries": 50.0 + seed, "perturbed_pct": 15.0,
                         "num_examples": 200 - 20 * (seed == 2 and strategy == "freelb")})
    return pd.DataFrame(rows)


def test_rows_are_grouped_over_seeds_with_the_papers_numbers_beside():
    table = reproduction_table(_summary())  # the dataset comes from the store's data.dataset
    assert list(table["Method"]) == ["BERT", "BERT+VDA", "FreeLB+VDA"]
    bert = table.set_index("Method").loc["BERT"]
    assert bert["seeds"] == 2 and bert["mode"] == "-" and bert["examples"] == "200"
    assert table.set_index("Method").loc["FreeLB+VDA", "examples"] == "180-200"  # an attack still running
    assert bert["Ori Acc"] == "0.820 ± 0.020" and bert["Att Acc"] == "0.150 ± 0.050"
    assert bert["paper Att Acc"] == 0.210
    assert table.set_index("Method").loc["FreeLB+VDA", "paper Ori Acc"] == 0.883
    deltas = table.set_index("Method")["Δ Att Acc"]  # paired with the same seed's base row
    assert deltas["BERT"] == "" and deltas["BERT+VDA"] == "+0.100 ± 0.000" and deltas["FreeLB+VDA"] == "no base"


def test_hub_dataset_names_map_to_the_papers_and_tables_are_chosen():
    table = reproduction_table(_summary("hf:glue/mrpc"))
    assert table.set_index("Method").loc["BERT", "paper Ori Acc"] == 0.826  # Table 3
    table = reproduction_table(_summary("hf:glue/mrpc"), table="ada")
    assert table.set_index("Method").loc["BERT", "paper Ori Acc"] == 0.834  # Table 5 (dev set)
    with pytest.raises(ValueError, match="unknown paper table"):
        reproduction_table(_summary(), table="table9")


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
    assert not any(c.startswith("paper") for c in reproduction_table(_summary(), "my-data").columns)
    with pytest.raises(ValueError, match="no attacked checkpoints"):
        reproduction_table(pd.DataFrame())
