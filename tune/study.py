"""A study's cells and what its store already holds: reuse by training key, and ``status``.

    python -m tune.study status --config study_mr --store results/study-mr/store

A *cell* is one resolved training config. Its *training key* (``vda.training_version.training_key``)
hashes the config fields that change the weights and the training-code version. Each trained cell
leaves a *training record* in the store (``<store>/trainings/<key>-<run_id>.parquet``: the key, the
checkpoint the sweep attacks, its metrics, the training time), written by ``tune.pipeline`` when
its trial ends; each of its checkpoints' rows carries the key too (``training_key`` column, from the
checkpoint's ``training.json``).

Before launching, the sweep reads the records (``stored_cells``) and hands them to every trial.
A trial whose key is stored is *reported from the store* (``decide``): it reports the stored
metrics once, marked ``reused_from_store``, and returns without training, so Tune shows it
TERMINATED like any finished trial and the searcher is told its stored objectives. The pipeline
then submits the stored checkpoint to the attack pool, which attacks only what the store lacks
(nothing, for a complete cell). A cell whose checkpoint directory is gone is reported from the
store when its rows are complete under the requested attacks (``attacks_complete``); otherwise it
is *missing* and only trained again with ``--retrain-missing``.

``status`` prints the same classification without running anything, with the measured time per
cell (training + attack worker time) and a predicted time for the cells still missing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tune.config import AttackSettings, SweepSpec
from vda.training_version import training_key

TRAINING_FILE = "training.json"  # in every checkpoint directory a sweep trial reports: key and code version
TRAININGS_DIR = "trainings"
REUSED = "reused_from_store"  # reported metric: 1 when the trial was reported from the store, not trained
MISSING = "missing_checkpoint"  # 1: stored, its checkpoint gone, its attacks incomplete, not retrained
BUDGET_SKIPPED = "skipped_by_budget"  # 1: not started, --max-minutes had passed
TRAINING_KEY = "training_key"
REUSED_PATH = "reused_checkpoint"  # reported with REUSED: the stored checkpoint's path
REUSED_HASH = "reused_checkpoint_hash"  # and its content hash
RETRAIN_HINT = "rerun with --retrain-missing to train it again"


@dataclass(frozen=True)
class StoredCell:
    """A trained cell as its training record has it, plus what is true of it now."""

    training_key: str
    run_id: str
    checkpoint_hash: str
    path: str
    metrics: dict[str, float]  # the selected checkpoint's epoch and metrics, as Tune was told them
    train_seconds: float
    exists: bool = False  # the checkpoint directory is still there (attackable)
    complete: bool = False  # complete rows under every requested attack


@dataclass(frozen=True)
class Decision:
    action: str  # train | reuse | missing
    cell: StoredCell | None = None


def decide(key: str, cells: Mapping[str, StoredCell], retrain_missing: bool) -> Decision:
    """What a trial of ``key`` does: reuse a stored cell that is attackable or complete, report a stored
    cell whose checkpoint is gone and whose attacks are incomplete as missing (unless ``retrain_missing``),
    train anything else."""
    cell = cells.get(key)
    if cell is None:
        return Decision("train")
    if cell.exists or cell.complete:
        return Decision("reuse", cell)
    return Decision("train") if retrain_missing else Decision("missing", cell)


# ------------------------------------------------------------ the store's training records

def write_training_record(store: Path, key: str, training_code: int, run_id: str, checkpoint_hash: str,
                          path: str, metrics: Mapping[str, float], train_seconds: float, sweep: str) -> Path:
    """Record that ``run_id`` trained the cell ``key`` to the end; ``path`` is the checkpoint it is attacked on."""
    from attack_workers.results.store import _write_parquet
    import pyarrow as pa

    record = {"training_key": key, "training_code": training_code, "run_id": run_id,
              "checkpoint_hash": checkpoint_hash, "path": path, "metrics": json.dumps(dict(metrics), sort_keys=True),
              "train_seconds": float(train_seconds), "sweep": sweep, "recorded_at": time.time()}
    return _write_parquet(pa.Table.from_pylist([record]), store / TRAININGS_DIR / f"{key}-{run_id}.parquet")


def load_trainings(store: Path) -> pd.DataFrame:
    """Every training record, the latest per training key."""
    from attack_workers.results.store import _read_parquet, _visible

    records = _read_parquet(_visible(store / TRAININGS_DIR))
    if records.empty:
        return records
    return (records.sort_values("recorded_at", kind="stable").drop_duplicates("training_key", keep="last")
            .reset_index(drop=True))


def attacks_complete(summary: pd.DataFrame, checkpoint_hash: str, attack: AttackSettings) -> bool:
    """Whether ``summary`` holds complete rows of ``checkpoint_hash`` for every attack of every pass ``attack``
    requests.

    Matched on protocol, attack recipe, split, attack parameters and example count: what a store
    can tell without the checkpoint (the attack key also hashes the models and code, which need it).
    """
    if not attack.enabled:
        return True
    if summary.empty:
        return False
    from attack_workers.results.store import flatten

    rows = summary[(summary["checkpoint_hash"] == checkpoint_hash) & (summary["split"] == attack.split)
                   & (summary["pending_examples"] == 0)]
    for column, value in flatten(attack.params.to_dict(), "attack.").items():
        if column in rows:
            rows = rows[rows[column].astype(str) == str(value)]
    for attack_pass in attack.passes:
        done = rows[(rows["protocol"] == attack_pass.protocol) & (rows["num_examples"] >= attack.examples(attack_pass))]
        if not set(attack_pass.attacks) <= set(done["attack"]):
            return False
    return True


def stored_cells(store: Path, attack: AttackSettings) -> dict[str, StoredCell]:
    """The store's trained cells by training key, each checked for its checkpoint and its attacks."""
    from attack_workers.results.store import ResultStore

    records = load_trainings(store)
    if records.empty:
        return {}
    summary = ResultStore(store).load_summary()
    cells = {}
    for rec in records.to_dict("records"):
        cells[rec["training_key"]] = StoredCell(
            rec["training_key"], rec["run_id"], rec["checkpoint_hash"], rec["path"], json.loads(rec["metrics"]),
            float(rec["train_seconds"]), exists="://" in rec["path"] or Path(rec["path"]).is_dir(),
            complete=attacks_complete(summary, rec["checkpoint_hash"], attack))
    return cells


def cell_table(cells: Mapping[str, StoredCell]) -> dict[str, dict[str, Any]]:
    """``cells`` as plain dicts: what travels to every trial through ``tune.with_parameters``."""
    return {key: asdict(cell) for key, cell in cells.items()}


def cells_from_table(table: Mapping[str, Mapping[str, Any]]) -> dict[str, StoredCell]:
    return {key: StoredCell(**cell) for key, cell in table.items()}


# ------------------------------------------------------------ the study's cells and their status

def planned_cells(spec: SweepSpec, version: int) -> dict[str, str] | None:
    """Training key -> a label (variant and grid values) of every cell a grid sweep will run; None when
    the space is sampled (Optuna, or a choice/range), whose configs are known only as each trial starts."""
    from tune.space import train_config

    if spec.sweep.searcher != "grid" or any(d.kind != "grid" for d in spec.search.values()):
        return None
    keys = list(spec.search)
    cells: dict[str, str] = {}
    for name, overrides in (spec.variants or {"": {}}).items():
        for values in itertools.product(*(spec.search[k].values for k in keys)):
            combo = dict(zip(keys, values))
            cfg = train_config(spec.fixed, {**overrides, **combo}, f"cell {name}")
            label = " ".join([*([f"variant={name}"] if name else []), *(f"{k}={v}" for k, v in combo.items())])
            cells.setdefault(training_key(cfg.to_dict(), version), label or "fixed")
    return cells


@dataclass
class StudyStatus:
    name: str
    planned: dict[str, str] | None  # key -> label; None for a sampled space
    requested: int  # cells (grid) or trials (sampled) the sweep asks for
    done: dict[str, float] = field(default_factory=dict)  # key -> measured seconds (training + attacks)
    to_attack: list[str] = field(default_factory=list)  # stored, checkpoint there, attacks incomplete
    missing: list[str] = field(default_factory=list)  # keys not done (grid only)

    @property
    def num_missing(self) -> int:
        return len(self.missing) if self.planned is not None else max(0, self.requested - len(self.done))

    def seconds_per_cell(self) -> float | None:
        timed = [s for s in self.done.values() if s > 0]
        return sum(timed) / len(timed) if timed else None

    def format(self) -> str:
        lines = [f"study {self.name}: {self.requested} cell(s), {len(self.done)} done, {self.num_missing} missing"
                 + (f" ({len(self.to_attack)} of them trained, to attack)" if self.to_attack else "")]
        if self.planned is None:
            lines.append("  sampled search space: cells are known only as trials start; done counts the store's "
                         "cells of this sweep")
        for key, label in (self.planned or {}).items():
            state = ("done" if key in self.done else "to attack" if key in self.to_attack else "missing")
            took = f"  {self.done[key]:.0f} s" if key in self.done else ""
            lines.append(f"  {state:<9} {key}  {label}{took}")
        per_cell = self.seconds_per_cell()
        if per_cell is None:
            lines.append("measured time per cell: none in the store")
        else:
            lines.append(f"measured time per cell: {per_cell:.0f} s (training + attack worker time, mean of "
                         f"{len([s for s in self.done.values() if s > 0])} cell(s)); predicted remaining: "
                         f"{per_cell * self.num_missing / 60:.1f} min for {self.num_missing} cell(s)")
        return "\n".join(lines)


def study_status(spec: SweepSpec, store: Path, version: int) -> StudyStatus:
    """Which of ``spec``'s cells ``store`` holds complete, with their measured times; runs nothing."""
    from attack_workers.results.store import ResultStore

    planned = planned_cells(spec, version)
    cells = stored_cells(store, spec.sweep.attack)
    if planned is None:
        records = load_trainings(store)
        ours = set(records.loc[records["sweep"] == spec.sweep.name, "training_key"]) if len(records) else set()
        cells = {k: c for k, c in cells.items() if k in ours}
    attack_seconds = _attack_seconds(ResultStore(store))
    status = StudyStatus(spec.sweep.name, planned,
                         len(planned) if planned is not None else spec.sweep.num_samples)
    for key in (planned if planned is not None else cells):
        cell = cells.get(key)
        if cell is not None and cell.complete:
            status.done[key] = cell.train_seconds + attack_seconds.get(cell.checkpoint_hash, 0.0)
        elif cell is not None and cell.exists:
            status.to_attack.append(key)
            status.missing.append(key)
        else:
            status.missing.append(key)
    return status


def _attack_seconds(store: Any) -> dict[str, float]:
    """Attack worker seconds per checkpoint hash, summed over its example rows."""
    from attack_workers.results.store import _read_parquet, _visible

    files = _visible(store.root / "examples", "*/*/*.parquet")
    if not files:
        return {}
    rows = _read_parquet(files, ["checkpoint_hash", "seconds"])
    return {k: float(v) for k, v in rows.groupby("checkpoint_hash")["seconds"].sum().items() if math.isfinite(v)}


def main(argv: list[str] | None = None) -> int:
    from tune.config import load_sweep
    from vda.config import ConfigError
    from vda.training_version import training_code_version

    parser = argparse.ArgumentParser(prog="python -m tune.study", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    st = sub.add_parser("status", help="cells done, missing and measured time per cell; runs nothing")
    st.add_argument("--config", help="sweep YAML or a shipped config's name (default: default)")
    st.add_argument("--store", help="results store (default: the sweep's <output_dir>/<name>/store)")
    st.add_argument("overrides", nargs="*", help="key=value overrides, as for tune/sweep.py")
    args = parser.parse_args(argv)
    try:
        spec = load_sweep(args.config, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    store = Path(args.store) if args.store else spec.sweep.directory / "store"
    print(study_status(spec, store, training_code_version()).format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
