"""The results store: a directory of Parquet files, one per finished shard, written atomically.

Layout::

    <store>/examples/<checkpoint_hash>/<attack_key>/<shard>.parquet   per-example rows of one shard
    <store>/checkpoints/<checkpoint_hash>.parquet                     the checkpoint's manifest, flattened
    <store>/failures/<...>.parquet                                    failed shards, skipped checkpoints
    <store>/plans/<checkpoint_hash>/<attack_key>.<ids>.json           example ids an evaluation set out to attack

Why files and not a database: every writer (several evaluations at once, on one machine or on a
shared filesystem) only ever creates new files, each written to a hidden temp file and renamed
into place (``vda.assets.staged``). A reader therefore sees every finished shard and nothing
half-written, a crash mid-write leaves at most an ignored ``.tmp-*`` file, and no locking is
needed: not even for plans, where each plan is its own file and readers take their union. Rows are keyed by
(checkpoint content hash, attack key = protocol + parameters + models + data, example id); if two
evaluations race on the same examples, readers keep the latest row per key.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from attack_workers.results.keys import UNION, attack_rank
from attack_workers.results.metrics import PROTOCOL_METRICS, audit_summary
from attack_workers.results.union import union_examples, union_groups
from vda.assets import staged
from vda.dotted import flatten as flatten_dotted

EXAMPLE_SCHEMA = pa.schema([
    ("checkpoint_hash", pa.string()),  # vda.checkpoint.checkpoint_hash: weights + manifest bytes
    ("run_id", pa.string()),
    ("attack_key", pa.string()),  # protocols.attack_key: protocol, AttackParams, MLM, encoder, data split
    ("protocol", pa.string()),
    ("attack", pa.string()),  # the recipe: bert-attack | textfooler | pwws (attack_workers.attack.recipes)
    ("union_key", pa.string()),  # protocols.union_key: the attack key without the recipe (the union's group)
    ("attack_params", pa.string()),  # JSON of AttackParams
    ("dataset", pa.string()),
    ("split", pa.string()),
    ("example_id", pa.string()),
    ("label", pa.int64()),
    ("clean_pred", pa.int64()),  # prediction on the original text
    ("adv_pred", pa.int64()),  # prediction on the final text (= clean_pred when skipped)
    ("status", pa.string()),  # succeeded | failed | skipped | spared (not attacked: skip_broken)
    ("num_queries", pa.int64()),  # victim-model queries, initial prediction included
    ("num_words", pa.int64()),  # TextAttack's word split, all text columns
    ("num_whitespace_words", pa.int64()),  # str.split() over all text columns (the authors' script)
    ("words_changed", pa.int64()),
    ("original_text", pa.string()),
    ("original_text_b", pa.string()),  # second sentence of a pair, else null
    ("perturbed_text", pa.string()),
    ("perturbed_text_b", pa.string()),
    ("seconds", pa.float64()),  # wall time of this example's attack on its worker
    ("shard_id", pa.string()),
    ("worker", pa.string()),
    ("node_id", pa.string()),  # the Ray node the worker ran on ('' in-process; absent from stores written before)
    ("finished_at", pa.float64()),  # unix time the shard finished
    # the validity audit (attack_workers.lexicon.audit): every example, every protocol
    ("substitutions", pa.string()),  # JSON [[original word, new word], ...]
    ("audit_antonym", pa.bool_()),  # a new word is a WordNet antonym of the word it replaced
    ("audit_polarity_flip", pa.bool_()),  # opposite clear sentiment in VADER's lexicon
    ("audit_nonword", pa.bool_()),  # a new word is not an English word
    ("audit_min_cos", pa.float64()),  # lowest word-vector cosine among the substitutions (NaN: none with vectors)
    ("audit_unknown_pairs", pa.int64()),  # substitutions where a word has no vector (pass the filter unchecked)
    ("audit_hole", pa.bool_()),  # at least one such substitution
    ("audit_pos_change", pa.bool_()),  # a new word has another part of speech in context
    ("audit_inflection_change", pa.bool_()),  # same part of speech, other inflection ("watch" -> "watched")
    ("audit_stopword_swap", pa.bool_()),  # a stop word (any case) is replaced or comes in
    ("audit_flagged", pa.bool_()),  # any of the flags above (attack_workers.results.metrics.FLAG_COLUMNS)
])
EXAMPLE_COLUMNS = tuple(EXAMPLE_SCHEMA.names)
FAILURE_SCHEMA = pa.schema([
    ("kind", pa.string()),  # shard: a shard failed; checkpoint: a checkpoint was skipped
    ("path", pa.string()),
    ("checkpoint_hash", pa.string()),  # "" for skipped checkpoints
    ("attack_key", pa.string()),
    ("example_ids", pa.list_(pa.string())),
    ("error", pa.string()),
    ("attempts", pa.int64()),
    ("recorded_at", pa.float64()),
])
ROW_KEY = ["checkpoint_hash", "attack_key", "example_id"]


class StoreError(RuntimeError):
    """The store holds something unreadable; the message names the file."""


def digest(parts: Iterable[str], length: int = 16) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:length]


def _write_parquet(table: pa.Table, path: Path) -> Path:
    """Write ``table`` to ``path`` through a hidden temp file (``staged``): readers never see a partial file."""
    with staged(path) as tmp:
        pq.write_table(table, tmp)
    return path


def _read_parquet(paths: list[Path], columns: list[str] | None = None) -> pd.DataFrame:
    frames = []
    for path in paths:
        try:
            frames.append(pq.read_table(path, columns=columns).to_pandas())
        except (pa.ArrowInvalid, OSError) as exc:
            raise StoreError(f"{path}: unreadable Parquet file ({exc}); delete it and re-run the evaluation "
                             "to recompute its shard") from None
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _visible(directory: Path, pattern: str = "*.parquet") -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob(pattern) if not p.name.startswith("."))


def flatten(d: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``{"vda": {"sigma": 0.01}}`` -> ``{"<prefix>vda.sigma": 0.01}``; lists become JSON strings (Parquet scalars)."""
    return {key: json.dumps(list(value)) if isinstance(value, (list, tuple)) else value
            for key, value in flatten_dotted(d, prefix).items()}


def check_rows(rows: list[dict[str, Any]], columns: Sequence[str], writer: str, schema: str) -> None:
    """Refuse an empty write or rows whose columns differ from ``columns``: a file's rows share one schema."""
    if not rows:
        raise ValueError(f"{writer}: no rows; a finished unit of work has at least one")
    bad = [sorted(set(columns) ^ set(r)) for r in rows if set(r) != set(columns)]
    if bad:
        raise ValueError(f"{writer}: rows do not match {schema}; differing columns: {bad[0]}")


class ResultStore:
    """Read and write one store directory (created on first write)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    # ------------------------------------------------------------ writing

    def write_examples(self, rows: list[dict[str, Any]]) -> Path:
        """Write one finished shard's rows (all of one checkpoint and attack key) as one file."""
        check_rows(rows, EXAMPLE_COLUMNS, "write_examples", "EXAMPLE_SCHEMA")
        keys = {(r["checkpoint_hash"], r["attack_key"]) for r in rows}
        if len(keys) != 1:
            raise ValueError(f"write_examples: a shard's rows must share one checkpoint and attack key, got {keys}")
        (ckpt, key), = keys
        table = pa.Table.from_pylist(rows, schema=EXAMPLE_SCHEMA)
        name = digest(sorted(r["example_id"] for r in rows))
        return _write_parquet(table, self.root / "examples" / ckpt / key / f"{name}.parquet")

    def write_results(self, rows: list[dict[str, Any]]) -> list[Path]:
        """Write a finished shard's rows, one file per (checkpoint, attack key): a ``skip_broken`` shard
        returns the rows of every attack of its union."""
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault((row["checkpoint_hash"], row["attack_key"]), []).append(row)
        return [self.write_examples(group) for group in groups.values()]

    def write_checkpoint(self, record: dict[str, Any]) -> Path:
        """Record a checkpoint's identity and manifest (one row, keyed by its content hash)."""
        return _write_parquet(pa.Table.from_pylist([record]),
                              self.root / "checkpoints" / f"{record['checkpoint_hash']}.parquet")

    def write_failure(self, record: dict[str, Any]) -> Path:
        """Record a failed shard (``kind='shard'``) or a skipped checkpoint (``kind='checkpoint'``)."""
        record = {**record, "recorded_at": time.time()}
        if set(record) != set(FAILURE_SCHEMA.names):
            raise ValueError(f"write_failure: fields {sorted(record)} do not match {FAILURE_SCHEMA.names}")
        if record["kind"] == "shard":
            prefix = _shard_failure_prefix(record["checkpoint_hash"], record["attack_key"])
            name = f"{prefix}{digest(sorted(record['example_ids']))}"
        else:
            name = f"checkpoint-{digest([record['path']])}"
        return _write_parquet(pa.Table.from_pylist([record], schema=FAILURE_SCHEMA),
                              self.root / "failures" / f"{name}.parquet")

    def record_skipped_checkpoint(self, path: str, error: str) -> Path:
        """A checkpoint that could not be attacked (damaged, wrong labels...): kept next to the results."""
        return self.write_failure({"kind": "checkpoint", "path": path, "checkpoint_hash": "", "attack_key": "",
                                   "example_ids": [], "error": error, "attempts": 0})

    def record_failed_shard(self, shard: Any, error: str, attempts: int) -> Path:
        """A shard (``attack_workers.runtime.shards.Shard``) that failed; a later run retries its examples.
        A ``skip_broken`` shard is recorded under each attack key of its chain (the last file is returned)."""
        for target in (shard.target, *getattr(shard, "chain", ())):
            path = self.write_failure({"kind": "shard", "path": target.path, "checkpoint_hash": target.checkpoint_hash,
                                       "attack_key": target.attack_key, "example_ids": shard.example_ids,
                                       "error": error, "attempts": attempts})
        return path

    # ------------------------------------------------------------ reading

    def done_example_ids(self, checkpoint_hash: str, attack_key: str) -> set[str]:
        """Example ids already attacked for this checkpoint and attack key (what a resume skips)."""
        files = _visible(self.root / "examples" / checkpoint_hash / attack_key)
        return set(_read_parquet(files, ["example_id"])["example_id"]) if files else set()

    def load_examples(self, keys: Iterable[tuple[str, str]] | None = None) -> pd.DataFrame:
        """Every per-example row, one per (checkpoint, attack key, example): the latest if raced.

        ``keys`` ((checkpoint hash, attack key) pairs) reads only those attacks' files: what a caller
        that settles one checkpoint at a time (the sweep's pipeline) needs, without rereading the store.
        """
        examples = self.root / "examples"
        files = (_visible(examples, "*/*/*.parquet") if keys is None
                 else [f for checkpoint, key in dict.fromkeys(keys) for f in _visible(examples / checkpoint / key)])
        if not files:
            return pd.DataFrame({name: pd.Series(dtype=field.type.to_pandas_dtype())
                                 for name, field in zip(EXAMPLE_COLUMNS, EXAMPLE_SCHEMA)})
        rows = _with_attack_columns(_read_parquet(files))
        rows = rows.sort_values("finished_at", kind="stable").drop_duplicates(ROW_KEY, keep="last")
        return rows.sort_values([*ROW_KEY[:2], "example_id"], kind="stable").reset_index(drop=True)

    def load_checkpoints(self, hashes: Iterable[str] | None = None) -> pd.DataFrame:
        """One row per checkpoint hash: path, run id, flattened ``config.*`` and ``metrics.*`` (only the
        checkpoints ``hashes`` when given)."""
        directory = self.root / "checkpoints"
        files = (_visible(directory) if hashes is None
                 else [f for checkpoint in sorted(set(hashes)) for f in _visible(directory, f"{checkpoint}.parquet")])
        return _read_parquet(files)

    def load_failures(self, active_only: bool = True) -> pd.DataFrame:
        """Failed shards and skipped checkpoints; ``active_only`` drops those a later run has fixed."""
        failures = _read_parquet(_visible(self.root / "failures"))
        if failures.empty or not active_only:
            return failures
        keep = []
        done: dict[tuple[str, str], set[str]] = {}
        checkpoints = self.load_checkpoints()
        for record in failures.itertuples(index=False):
            if record.kind == "shard":
                key = (record.checkpoint_hash, record.attack_key)
                if key not in done:
                    done[key] = self.done_example_ids(*key)
                keep.append(not set(record.example_ids) <= done[key])
            else:
                later = checkpoints[(checkpoints["path"] == record.path)
                                    & (checkpoints["recorded_at"] > record.recorded_at)] if len(checkpoints) else []
                keep.append(len(later) == 0)
        return failures[keep].reset_index(drop=True)

    def load_summary(self, keys: Iterable[tuple[str, str]] | None = None) -> pd.DataFrame:
        """One row per (checkpoint, attack key): the protocol's metrics joined with the manifest.

        ``keys`` ((checkpoint hash, attack key) pairs) reads only the files of those attacks and their
        checkpoints, each once (see ``load_examples``): the sweep's pipeline settles every checkpoint
        through this call, so its cost must not grow with the store.
        """
        keys = None if keys is None else list(dict.fromkeys(keys))
        rows = self.load_examples(keys)
        if rows.empty:
            return pd.DataFrame()
        failed = self._failed_shard_ids(keys)
        records = []
        for (ckpt, key), group in rows.groupby(["checkpoint_hash", "attack_key"], sort=False):
            first = group.iloc[0]
            # Planned or in failed shards, not attacked yet: an interrupted evaluation and failed shards.
            wanted = self.planned_example_ids(ckpt, key) | failed.get((ckpt, key), set())
            records.append({
                "checkpoint_hash": ckpt, "attack_key": key, "run_id": first["run_id"],
                "protocol": first["protocol"], "attack": first["attack"], "union_key": first["union_key"],
                "dataset": first["dataset"], "split": first["split"],
                # spared rows (skip_broken) are left out of n: results.outcomes
                **protocol_metrics(first["protocol"])(group),
                **audit_summary(group),
                **flatten(json.loads(first["attack_params"]), "attack."),
                "pending_examples": len(wanted - set(group["example_id"])),
            })
        records += self._union_records(rows, failed)
        summary = pd.DataFrame(records)
        checkpoints = self.load_checkpoints(None if keys is None else summary["checkpoint_hash"])
        if len(checkpoints):
            manifest = checkpoints.drop(columns=[c for c in ("run_id",) if c in checkpoints])
            summary = summary.merge(manifest, on="checkpoint_hash", how="left")
        return summary

    def _union_records(self, rows: pd.DataFrame, failed: dict[tuple[str, str], set[str]]) -> list[dict[str, Any]]:
        """One summary row per checkpoint and union of two or more attacks (``attack_workers.results.union``).

        Its ``attack`` is "union", its ``attack_key`` the union row key (the union key and the attack
        set), ``union_key`` its attacks' union key, its metrics the protocol's over the examples every
        attack finished (n = 0 when none is yet: a partial union is a row, never a gap);
        ``pending_examples``: the examples any of its attacks planned (or lost in a failed shard) whose
        union outcome is not known yet; ``attacks``: the attacks in it.
        """
        union = union_examples(rows)
        records = []
        for (ckpt, key), group in union_groups(rows):
            members = group.drop_duplicates("attack_key")
            outcomes = union[(union["checkpoint_hash"] == ckpt) & (union["attack_key"] == key)]
            wanted = set().union(*(self.planned_example_ids(ckpt, k) | failed.get((ckpt, k), set())
                                   | set(group.loc[group["attack_key"] == k, "example_id"])
                                   for k in members["attack_key"]))
            first = members.iloc[0]
            records.append({
                "checkpoint_hash": ckpt, "attack_key": key, "run_id": first["run_id"], "protocol": first["protocol"],
                "attack": UNION, "union_key": first["union_key"], "dataset": first["dataset"],
                "split": first["split"],
                "attacks": ",".join(sorted(members["attack"], key=lambda a: (attack_rank(a), a))),
                **protocol_metrics(first["protocol"])(outcomes), **audit_summary(outcomes),
                **flatten(json.loads(first["attack_params"]), "attack."),
                "pending_examples": len(wanted - set(outcomes["example_id"])),
            })
        return records

    def record_plan(self, checkpoint_hash: str, attack_key: str, example_ids: list[str]) -> Path:
        """Remember which examples an evaluation of this checkpoint and key set out to attack.

        Why: a run interrupted mid-way leaves a partial n in the store; the summary compares what
        was planned with what is done and reports the difference as ``pending_examples``. Each plan
        is its own file, named by its ids, and the planned ids are the union of the files: two
        planners of one checkpoint and key at once both keep their ids, with no lock and no
        read-modify-write; the same plan recorded again (a resume) writes nothing.
        """
        ids = sorted(set(example_ids))
        path = self.root / "plans" / checkpoint_hash / f"{attack_key}.{digest(ids)}.json"
        if not path.is_file():
            with staged(path) as tmp:
                tmp.write_text(json.dumps(ids))
        return path

    def planned_example_ids(self, checkpoint_hash: str, attack_key: str) -> set[str]:
        """Every example id any evaluation planned for this checkpoint and key."""
        directory = self.root / "plans" / checkpoint_hash
        # <key>.json: the one read-modify-write plan file of stores written before plans were per-plan files
        files = _visible(directory, f"{attack_key}.*.json") + _visible(directory, f"{attack_key}.json")
        return set().union(*(json.loads(f.read_text()) for f in files))

    def _failed_shard_ids(self, keys: list[tuple[str, str]] | None) -> dict[tuple[str, str], set[str]]:
        """Example ids in failed shards, by (checkpoint, attack key); only the ``keys``' files when given."""
        failures = self.root / "failures"
        files = (_visible(failures, "shard-*.parquet") if keys is None
                 else [f for checkpoint, key in keys
                       for f in _visible(failures, f"{_shard_failure_prefix(checkpoint, key)}*.parquet")])
        failed: dict[tuple[str, str], set[str]] = {}
        if files:
            for record in _read_parquet(files, ["checkpoint_hash", "attack_key", "example_ids"]).itertuples():
                failed.setdefault((record.checkpoint_hash, record.attack_key), set()).update(record.example_ids)
        return failed


def protocol_metrics(protocol: str) -> Any:
    """The metric definitions (``metrics.PROTOCOL_METRICS``) of a protocol that rows record; an unknown one is
    an error."""
    if protocol not in PROTOCOL_METRICS:
        raise StoreError(f"rows of protocol {protocol!r}, which has no metric definitions "
                         f"(attack_workers.results.metrics.PROTOCOL_METRICS: {', '.join(sorted(PROTOCOL_METRICS))})")
    return PROTOCOL_METRICS[protocol]


def _with_attack_columns(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of stores written before attacks had names: BERT-Attack, each attack key its own union."""
    if "attack" not in rows:
        rows["attack"] = None
    if "union_key" not in rows:
        rows["union_key"] = None
    rows["attack"] = rows["attack"].fillna("bert-attack")
    rows["union_key"] = rows["union_key"].fillna(rows["attack_key"])
    return rows


def _shard_failure_prefix(checkpoint_hash: str, attack_key: str) -> str:
    """File names of a failed shard of this checkpoint and key start with this (``write_failure``)."""
    return f"shard-{checkpoint_hash}-{attack_key}-"


def load_summary(store: str | Path) -> pd.DataFrame:
    """Per-checkpoint metrics and manifest columns of the store at ``store``."""
    return ResultStore(store).load_summary()


def load_examples(store: str | Path) -> pd.DataFrame:
    """Every per-example row of the store at ``store`` (recompute any metric from these)."""
    return ResultStore(store).load_examples()
