"""Checkpoint diagnostics: calibration by hand, the shared drift of unseen rows, a real checkpoint end to end."""

import csv

import pytest
import torch

from vda.config import DataConfig, TrainConfig, VDAConfig
from vda.diagnostics import (diagnose, expected_calibration_error, main, shared_drift, unseen_token_rows)
from vda.batching import EncodedSplit
from vda.train import fit


def test_calibration_error_by_hand():
    probs = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.95, 0.05], [0.3, 0.7]])
    labels = torch.tensor([0, 0, 0, 1])  # confidences 0.9 (right), 0.6 (wrong), 0.95 (right), 0.7 (right)
    # bins (0.867, 0.933], (0.533, 0.6], (0.933, 1.0], (0.667, 0.733]: each a quarter of the examples
    expected = 0.25 * (0.1 + 0.6 + 0.05 + 0.3)
    assert expected_calibration_error(probs, labels) == pytest.approx(expected)


def test_shared_drift_separates_one_common_shift_from_row_noise():
    torch.manual_seed(0)
    initial = torch.randn(50, 8)
    common = torch.full((8,), 0.01)
    trained = initial + common + 1e-4 * torch.randn(50, 8)
    unseen = torch.zeros(50, dtype=torch.bool)
    unseen[10:] = True
    trained[:10] += 1.0  # seen rows move a lot: they must not count
    shared, residual = shared_drift(initial, trained, unseen)
    assert shared == pytest.approx(float(common.norm()), rel=0.05)
    assert residual < 0.05 * shared


def test_unseen_rows_are_the_tokens_of_no_training_example():
    split = EncodedSplit(features=[{"input_ids": [0, 3, 1]}, {"input_ids": [0, 4, 4, 1]}], labels=[0, 1], truncated=0)
    assert unseen_token_rows(split, 6).tolist() == [False, False, True, False, False, True]


def test_a_trained_checkpoint_is_diagnosed_and_written(tiny_model_dir, tmp_path, capsys):
    cfg = TrainConfig(model=tiny_model_dir, mlm=tiny_model_dir, lr=1e-3, batch_size=16, epochs=1, eval_test=False,
                      data=DataConfig(dataset="mr", max_train_examples=48, max_eval_examples=32, max_length=32),
                      vda=VDAConfig(mode="code", k=1))
    best = fit(cfg, tmp_path / "run", progress=False).best_dir
    row = diagnose(best)
    assert 0.5 <= row.dev_mean_max_prob <= 1.0 and 0.0 <= row.dev_ece <= 1.0
    assert sum(row.mean_input_probs) == pytest.approx(1.0, abs=1e-5)
    assert row.unseen_rows > 20_000  # 48 sentences cover a small part of the 30k vocabulary
    assert row.drift_shared_norm > 0  # code mode: the mixture's gradient reached rows no batch held
    out = tmp_path / "diagnostics.csv"
    assert main([str(best), "--out", str(out)]) == 0
    assert next(csv.DictReader(out.open()))["checkpoint_hash"] == row.checkpoint_hash
    rows = out.read_text().splitlines()
    out.write_text("\n".join([rows[0], rows[1].replace(row.checkpoint_hash, "0" * 16)]) + "\n")  # an earlier chunk's
    assert main([str(best), "--out", str(out)]) == 0
    assert [r["checkpoint_hash"] for r in csv.DictReader(out.open())] == ["0" * 16, row.checkpoint_hash]
    written = out.read_text()
    assert main([str(best), "--out", str(out), "--new-only"]) == 0  # a later chunk: already diagnosed
    assert out.read_text() == written and "0 checkpoint(s)" in capsys.readouterr().out
    assert main([str(tmp_path / "missing"), "--out", str(tmp_path / "x.csv")]) == 2
    assert main([str(tmp_path / "missing"), "--out", str(out), "--new-only"]) == 2
