"""A study store as data in the repository: ``export`` a store into a few zstd Parquet files, ``import`` it back.

    python -m attack_workers export --store results/study-mr/store --out results/studies/study-mr
    python -m attack_workers import --from results/studies/study-mr --store results/study-mr/store

Why: a store is thousands of small files (one per shard, checkpoint, plan), next to checkpoints of
hundreds of MB, on a machine that will be replaced. An export keeps what the tables and plots are
computed from, and what a continued sweep looks up (``tune.study``), in one file per table:

    examples.parquet      every per-example row (texts, outcomes, audit)
    checkpoints.parquet   every checkpoint's manifest row (config.*, metrics.*, training_key), no weights
    trainings.parquet     the training records a sweep reuses cells by
    failures.parquet      failed shards and skipped checkpoints
    transfer.parquet      replayed adversarial texts (``attack_workers transfer``), if any
    plans.parquet         the example ids each evaluation set out to attack (JSON text per plan file)
    reading.parquet       reading records (``--reading`` CSV files, or ``<store>/reading/*.csv``), if any
    sweep.yaml            the sweep's resolved config (``<store>/../sweep.yaml``, or ``--config``)
    export.json           what was exported: file names, row counts, the source store

Every row keeps the store file it came from (``_file``) and that file's columns (``_columns``), so
``import`` writes each file back as it was, byte-for-byte in its rows and types: a reader of the
imported store sees the same rows as a reader of the original. Both columns are dictionary-encoded
and cost almost nothing. ``import`` only adds files a store lacks, so importing twice, or into a
store that has moved on, never overwrites a row.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from vda.assets import staged

PARQUET_TABLES = ("examples", "checkpoints", "trainings", "failures", "transfer")  # store directories of Parquet files
PLANS = "plans"
READING = "reading"
FILE_COLUMN, COLUMNS_COLUMN = "_file", "_columns"
MANIFEST = "export.json"
SWEEP_FILE = "sweep.yaml"
ZSTD_LEVEL = 19  # written once, read often: the smallest files are worth the seconds
# sort keys that put similar rows next to each other (better compression), when a table has them
_SORT = ("checkpoint_hash", "attack_key", "example_id", "run_id", FILE_COLUMN)


class ExportError(ValueError):
    """An export or import cannot proceed; the message says what to change."""


def _visible(directory: Path, pattern: str) -> list[Path]:
    return sorted(p for p in directory.glob(pattern) if not any(part.startswith(".") for part in p.parts[-3:]))


def _with_origin(table: pa.Table, relative: str) -> pa.Table:
    n = table.num_rows
    return (table.append_column(FILE_COLUMN, pa.array([relative] * n, pa.string()))
            .append_column(COLUMNS_COLUMN, pa.array([json.dumps(table.column_names)] * n, pa.string())))


def _collect(store: Path, name: str) -> pa.Table | None:
    """Every Parquet file below ``<store>/<name>`` as one table, each row tagged with its file and columns."""
    files = _visible(store / name, "**/*.parquet")
    tables = [_with_origin(pq.read_table(f), str(f.relative_to(store))) for f in files]
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="permissive")


def _collect_plans(store: Path) -> pa.Table | None:
    files = _visible(store / PLANS, "**/*.json")
    if not files:
        return None
    return pa.table({FILE_COLUMN: [str(f.relative_to(store)) for f in files],
                     "text": [f.read_text() for f in files]})


def _collect_reading(paths: Sequence[Path]) -> pa.Table | None:
    tables = []
    for path in paths:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(strings_can_be_null=False,
                                                                          column_types=None))
        tables.append(table.cast(pa.schema([(n, pa.string()) for n in table.column_names]))
                      .append_column("source", pa.array([path.name] * table.num_rows, pa.string())))
    return pa.concat_tables(tables, promote_options="permissive") if tables else None


def _sorted(table: pa.Table) -> pa.Table:
    keys = [(k, "ascending") for k in _SORT if k in table.column_names]
    return table.sort_by(keys) if keys else table


def _write(table: pa.Table, path: Path) -> None:
    with staged(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", compression_level=ZSTD_LEVEL)


def export_store(store: str | Path, out: str | Path, sweep_config: str | Path | None = None,
                 reading: Sequence[str | Path] = ()) -> dict[str, Any]:
    """Write the export of ``store`` into ``out`` (created; files of an earlier export replaced); its manifest."""
    store, out = Path(store).expanduser(), Path(out).expanduser()
    if not (store / "examples").is_dir() and not (store / "checkpoints").is_dir():
        raise ExportError(f"{store} is not a results store (no examples/ or checkpoints/); pass the store "
                          "directory, e.g. results/<sweep>/store")
    out.mkdir(parents=True, exist_ok=True)
    reading_files = [Path(p) for p in reading] or _visible(store / READING, "*.csv")
    tables = {name: _collect(store, name) for name in PARQUET_TABLES}
    tables[PLANS] = _collect_plans(store)
    tables[READING] = _collect_reading(reading_files)
    written: dict[str, Any] = {}
    for name, table in tables.items():
        target = out / f"{name}.parquet"
        if table is None:
            target.unlink(missing_ok=True)
            continue
        _write(_sorted(table), target)
        written[target.name] = {"rows": table.num_rows, "bytes": target.stat().st_size}
    config = Path(sweep_config) if sweep_config else store.parent / SWEEP_FILE
    if sweep_config and not config.is_file():
        raise ExportError(f"--config {config}: no such file")
    if config.is_file():
        shutil.copyfile(config, out / SWEEP_FILE)
        written[SWEEP_FILE] = {"bytes": (out / SWEEP_FILE).stat().st_size}
    manifest = {"source": str(store.resolve()), "exported_at": time.time(), "files": written,
                "total_bytes": sum(f["bytes"] for f in written.values())}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def import_store(export: str | Path, store: str | Path) -> dict[str, int]:
    """Write every store file of the export at ``export`` that ``store`` lacks; counts of files written
    and of files already there, per table. Reading records are not store files and stay in the export."""
    export, store = Path(export).expanduser(), Path(store).expanduser()
    if not (export / MANIFEST).is_file():
        raise ExportError(f"{export} holds no {MANIFEST}: not an export written by `python -m attack_workers "
                          "export`")
    counts: dict[str, int] = {"written": 0, "present": 0}
    for name in PARQUET_TABLES:
        path = export / f"{name}.parquet"
        if path.is_file():
            _import_table(pq.read_table(path), store, counts)
    if (export / f"{PLANS}.parquet").is_file():
        for row in pq.read_table(export / f"{PLANS}.parquet").to_pylist():
            target = store / row[FILE_COLUMN]
            if target.exists():
                counts["present"] += 1
                continue
            with staged(target) as tmp:
                tmp.write_text(row["text"])
            counts["written"] += 1
    return counts


def _import_table(table: pa.Table, store: Path, counts: dict[str, int]) -> None:
    files = table.column(FILE_COLUMN)
    for relative in pc.unique(files).to_pylist():
        target = store / relative
        if target.exists():
            counts["present"] += 1
            continue
        rows = table.filter(pc.equal(files, relative))
        columns = json.loads(rows.column(COLUMNS_COLUMN)[0].as_py())
        with staged(target) as tmp:
            pq.write_table(rows.select(columns), tmp)
        counts["written"] += 1


# ------------------------------------------------------------ command line (python -m attack_workers export|import)

def add_parsers(sub: Any) -> None:
    """The ``export`` and ``import`` subcommands of ``python -m attack_workers``."""
    ex = sub.add_parser("export", help="a compact copy of a store (zstd Parquet, one file per table, no weights) "
                                       "to commit under results/studies/NAME (docs/store.md)")
    ex.add_argument("--store", required=True, help="results store to export")
    ex.add_argument("--out", required=True, help="export directory, e.g. results/studies/NAME")
    ex.add_argument("--config", help="the sweep config to include (default: <store>/../sweep.yaml if present)")
    ex.add_argument("--reading", action="append", default=[],
                    help="a reading-record CSV to include (repeatable; default: <store>/reading/*.csv)")
    im = sub.add_parser("import", help="bring an export back into a working store: a sweep over that store "
                                       "reuses its cells (files the store has are kept)")
    im.add_argument("--from", dest="source", required=True, help="export directory (results/studies/NAME)")
    im.add_argument("--store", required=True, help="results store to write into (created if missing)")


def run_export(args: Any) -> int:
    manifest = export_store(args.store, args.out, args.config, args.reading)
    for name, info in manifest["files"].items():
        rows = f"{info['rows']} rows, " if "rows" in info else ""
        print(f"{Path(args.out) / name}: {rows}{info['bytes'] / 1e6:.3f} MB")
    print(f"total {manifest['total_bytes'] / 1e6:.3f} MB")
    return 0


def run_import(args: Any) -> int:
    counts = import_store(args.source, args.store)
    print(f"{args.store}: {counts['written']} file(s) written, {counts['present']} already there")
    return 0
