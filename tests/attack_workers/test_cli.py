"""``python -m attack_workers``: help, exit codes, and the summary table; importing stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from attack_workers.cli import main
from attack_workers.results.store import ResultStore

REPO = Path(__file__).resolve().parents[2]


def test_help_lists_the_flags_and_every_protocol_with_its_meaning():
    from attack_workers.attack.protocols import PROTOCOLS

    out = subprocess.run([sys.executable, "-m", "attack_workers", "evaluate", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    for flag in ("--num-examples", "--seed", "--protocol", "--max-candidates", "--workers", "--store", "--address",
                 "--split", "--dataset"):
        assert flag in out.stdout
    assert all(p.name in out.stdout and p.description in out.stdout for p in PROTOCOLS.values())


def test_non_finite_resources_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", str(tmp_path), "--store", str(tmp_path / "s"), "--gpus-per-worker", "nan"])
    assert exit_.value.code == 2 and "'nan' is not a finite number >= 0" in capsys.readouterr().err


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
    assert all(h in lines[0] for h in ("Ori Acc", "Att Acc", "Q Num", "Perturb", "Holes", "Flagged"))
    # vda-paper: 4 correct, 1 robust (Wilson 1/4: [0.046, 0.699]); queries 10 - 1 each; perturbed 10% on 3 of 4;
    # no hole, nothing flagged
    assert lines[2].split()[-9:] == ["4", "1.000", "0.250", "[0.046,", "0.699]", "9.000", "7.500", "0.000", "0.000"]
    assert main(["summary", "--store", str(tmp_path), "--csv"]) == 0
    header = capsys.readouterr().out.splitlines()[0].split(",")
    assert {"attack_success_rate", "attack_acc_low", "attack_acc_high"} <= set(header)


@pytest.mark.parametrize("module", ["attack_workers", "attack_workers.results.store", "attack_workers.runtime.evaluation"])
def test_importing_the_package_loads_neither_textattack_nor_ray(module):
    probe = f"import sys, {module}; print('textattack' in sys.modules, 'ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr[-2000:]
