"""The paper-layout reproduction table: grouping over seeds, row names, published numbers."""

import pandas as pd
import pytest

from tune.reproduce import reproduction_table


def _summary():
    rows = []
    for seed, (clean, attack) in enumerate([(0.80, 0.10), (0.84, 0.20)], start=1):
        for strategy, lam in (("plain", 0.0), ("plain", 1.0), ("freelb", 1.0)):
            rows.append({"config.strategy.name": strategy, "config.vda.lam": lam, "config.vda.mode": "sharp",
                         "config.seed": seed, "clean_acc": clean, "attack_acc": attack + lam / 10,
                         "avg_queries": 50.0 + seed, "perturbed_pct": 15.0})
    return pd.DataFrame(rows)


def test_rows_are_grouped_over_seeds_with_the_papers_numbers_beside():
    table = reproduction_table(_summary(), "mr")
    assert list(table["Method"]) == ["BERT", "BERT+VDA", "FreeLB+VDA"]
    bert = table.set_index("Method").loc["BERT"]
    assert bert["seeds"] == 2 and bert["mode"] == "-"
    assert bert["Ori Acc"] == "0.820 ± 0.020" and bert["Att Acc"] == "0.150 ± 0.050"
    assert bert["paper Att Acc"] == 0.210
    assert table.set_index("Method").loc["FreeLB+VDA", "paper Ori Acc"] == 0.883


def test_unknown_dataset_has_no_paper_columns_and_empty_store_is_an_error():
    assert not any(c.startswith("paper") for c in reproduction_table(_summary(), "my-data").columns)
    with pytest.raises(ValueError, match="no attacked checkpoints"):
        reproduction_table(pd.DataFrame())
