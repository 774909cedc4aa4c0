"""``python -m attack_workers``: help, exit codes, and the summary table; importing stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from attack_workers.cli import main
from attack_workers.store import ResultStore

REPO = Path(__file__).resolve().parents[2]


def test_help_lists_the_flags():
    out = subprocess.run([sys.executable, "-m", "attack_workers", "evaluate", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    for flag in ("--num-examples", "--seed", "--protocol", "--max-candidates", "--workers", "--store", "--address",
                 "--split", "--dataset"):
        assert flag in out.stdout


def test_bad_input_exits_2_with_the_reason(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nowhere"), "--store", str(tmp_path / "s")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path), "--store", str(tmp_path / "s"), "--protocol", "paper"]) == 2
    assert "did you mean 'vda-paper'" in capsys.readouterr().err


def test_summary_prints_the_papers_columns(tmp_path, capsys, make_shard):
    store = ResultStore(tmp_path)
    store.write_examples(make_shard(["e1", "e2", "e3"], status="succeeded", protocol="vda-paper"))
    store.write_examples(make_shard(["e4"], status="failed", protocol="vda-paper"))
    assert main(["summary", "--store", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(h in lines[0] for h in ("Ori Acc", "Att Acc", "Q Num", "Perturb"))
    # vda-paper: 4 correct, 1 robust; queries 10 - 1 each; perturbed 10% on 3 of 4 (failed attacks count)
    assert lines[2].split()[-5:] == ["4", "1.000", "0.250", "9.000", "7.500"]
    assert main(["summary", "--store", str(tmp_path), "--csv"]) == 0
    assert "attack_success_rate" in capsys.readouterr().out


@pytest.mark.parametrize("module", ["attack_workers", "attack_workers.store", "attack_workers.evaluation"])
def test_importing_the_package_loads_neither_textattack_nor_ray(module):
    probe = f"import sys, {module}; print('textattack' in sys.modules, 'ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr[-2000:]
