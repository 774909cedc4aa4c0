"""Transfer of adversarial examples: replay the successful texts found against one checkpoint on others.

``transfer(targets, TransferConfig(source_store=..., store=...))`` is the flow behind
``python -m attack_workers transfer``:

1. read the source store's rows with status ``succeeded`` (optionally only some source checkpoints,
   protocols, attacks); each keeps its checkpoint hash, attack key, example id, label and texts;
2. for every source checkpoint, reload its training split from the manifest its store recorded
   (``<store>/checkpoints``), for its label names and for the words it has seen;
3. find and vet the target checkpoints (as ``evaluate`` does) and refuse any whose labels differ;
4. per target, one job classifies every original and perturbed text it has not yet been given
   (``attack_workers.runtime.replay``: no search, one forward pass per distinct text, batched), in this
   process or on Ray, and one file of rows per (source, target, attack key) goes into the transfer store
   (``attack_workers.results.transfer``), which also computes the rates and prints the matrix.

Why count words never seen in training: a VDA variant whose mixture moves every embedding row
(the authors' code) shifts the rows of words absent from training together; an attack that
substitutes such words would be exactly what that drift could touch. A word here is what
``attack_workers.lexicon.words.text_words`` calls one (lower-case, letters with inner ' or -); a
substitute counts as unseen when one of its words never occurs in the train split, and one with
no letters at all (a number) cannot be judged and does not count.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from attack_workers.lexicon.words import text_words
from attack_workers.results.store import ResultStore
from attack_workers.results.transfer import TransferStore, transfer_summary, unseen_summary
from attack_workers.runtime.checkpoints import CheckpointInfo, CheckpointProblem, find_checkpoints, vet_checkpoint
from attack_workers.runtime.replay import Query, ReplayJob
from vda.config import DataConfig
from vda.data import DataError, load_task

if TYPE_CHECKING:  # pool.py imports ray
    from attack_workers.runtime.pool import PoolConfig

log = logging.getLogger("attack_workers")
SUCCEEDED = "succeeded"


class TransferError(ValueError):
    """The transfer cannot start; the message names the input and what to change."""


@dataclass(frozen=True)
class TransferConfig:
    source_store: str  # the results store whose successful attacks are replayed
    store: str  # where the transfer rows go (<store>/transfer); may be the source store
    sources: tuple[str, ...] = ()  # source checkpoints: hashes, hash prefixes or run ids; empty: all
    protocols: tuple[str, ...] = ()  # empty: every protocol in the source store
    attacks: tuple[str, ...] = ()  # empty: every attack recipe in the source store
    batch_size: int = 64  # texts per forward pass; does not change results

    def validate(self) -> TransferConfig:
        if self.batch_size < 1:
            raise TransferError(f"batch_size={self.batch_size}: use >= 1")
        return self


@dataclass(frozen=True)
class Source:
    """A source checkpoint: what its training split says about the texts found against it."""

    checkpoint_hash: str
    run_id: str
    label_names: tuple[str, ...]
    train_words: frozenset[str]


@dataclass(frozen=True)
class Group:
    """The successful rows of one (source, attack key) to replay on one target."""

    source: Source
    attack_key: str
    rows: pd.DataFrame


@dataclass
class TransferPlan:
    targets: list[CheckpointInfo] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)
    jobs: list[ReplayJob] = field(default_factory=list)
    groups: dict[str, list[Group]] = field(default_factory=dict)  # target hash -> what its job replays
    attack_keys: set[str] = field(default_factory=set)  # the selected source rows' attack keys
    texts_total: int = 0  # (source, target, attack key, example) cells
    texts_already_done: int = 0


@dataclass
class TransferReport:
    plan: TransferPlan
    summary: pd.DataFrame
    unseen: pd.DataFrame
    failed: list[tuple[str, str]] = field(default_factory=list)  # (target path, error)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


# ---------------------------------------------------------------- the source side


def successful_rows(config: TransferConfig) -> pd.DataFrame:
    """The source store's successful rows that the config selects; TransferError naming what is there if none."""
    root = Path(config.source_store).expanduser()
    if not (root / "examples").is_dir():
        raise TransferError(f"{root}: no results store there (no examples/ directory); pass the --store "
                            "directory of an evaluation ('python -m attack_workers evaluate ... --store DIR')")
    rows = ResultStore(root).load_examples()
    selected = rows
    for column, wanted in (("protocol", config.protocols), ("attack", config.attacks)):
        if wanted:
            selected = selected[selected[column].isin(wanted)]
    if config.sources:
        selected = selected[selected["checkpoint_hash"].isin(_match_sources(rows, config.sources, root))]
    succeeded = selected[selected["status"] == SUCCEEDED]
    if succeeded.empty:
        counts = selected["status"].value_counts().to_dict() if len(selected) else {}
        raise TransferError(
            f"{root}: no successful attack to replay among {len(selected)} selected row(s) (statuses {counts}; "
            f"the store holds protocols {sorted(rows['protocol'].unique())}, attacks "
            f"{sorted(rows['attack'].unique())}); choose other --protocol/--attacks/--sources, or attack first")
    return succeeded.reset_index(drop=True)


def _match_sources(rows: pd.DataFrame, sources: Sequence[str], root: Path) -> set[str]:
    """Checkpoint hashes named by ``sources`` (a hash, a hash prefix or a run id); each must name one at least."""
    known = rows.drop_duplicates("checkpoint_hash")[["checkpoint_hash", "run_id"]]
    matched: set[str] = set()
    for spec in sources:
        hit = known[known["checkpoint_hash"].str.startswith(spec) | (known["run_id"] == spec)]
        if hit.empty:
            listing = ", ".join(f"{r.run_id} ({r.checkpoint_hash[:8]})" for r in known.itertuples())
            raise TransferError(f"--sources {spec!r} names no checkpoint of {root}; it holds: {listing}")
        matched |= set(hit["checkpoint_hash"])
    return matched


def data_config_from_record(record: dict[str, Any]) -> DataConfig:
    """The ``DataConfig`` a checkpoint was trained with, from its store record (the manifest, flattened:
    ``config.data.<field>``, lists as JSON strings)."""
    values: dict[str, Any] = {}
    for spec in dataclasses.fields(DataConfig):
        value = record.get(f"config.data.{spec.name}")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if isinstance(spec.default, tuple):
            value = tuple(json.loads(value) if isinstance(value, str) else value)
        values[spec.name] = value
    if "dataset" not in values:
        raise TransferError(f"checkpoint {record.get('checkpoint_hash')}: its store record has no config.data.dataset; "
                            "the training data is unknown")
    return DataConfig(**values)


def load_source(store: ResultStore, checkpoint_hash: str, run_id: str) -> Source:
    """Label names and training words of a source checkpoint, from the data its store record names."""
    records = store.load_checkpoints([checkpoint_hash])
    if records.empty:
        raise TransferError(f"checkpoint {checkpoint_hash} ({run_id}) has rows in {store.root} but no record under "
                            f"{store.root / 'checkpoints'}; its training data is unknown (was the store copied "
                            "without its checkpoints/ directory?)")
    data = data_config_from_record(records.iloc[0].to_dict())
    try:
        task = load_task(data)
    except (DataError, FileNotFoundError, OSError) as exc:
        raise TransferError(f"checkpoint {checkpoint_hash} ({run_id}): its training data {data.dataset!r} cannot be "
                            f"loaded ({exc}); provision it where this runs") from None
    words = frozenset().union(*(text_words(text) for e in task.splits["train"] for text in (e.text_a, e.text_b)
                                if text))
    return Source(checkpoint_hash, run_id, tuple(task.label_names), words)


def unseen_words(substitutions: Any, train_words: frozenset[str]) -> list[str] | None:
    """The new words of ``substitutions`` (a store row's JSON pairs) with a word never seen in ``train_words``;
    None when the row recorded no substitutions (stores written before the audit)."""
    if not isinstance(substitutions, str):
        return None
    return [new for _, new in json.loads(substitutions) if (words := text_words(new)) and not words <= train_words]


# ---------------------------------------------------------------- the target side


def vet_targets(specs: Sequence[str], sources: dict[str, Source]) -> list[CheckpointInfo]:
    """The target checkpoints, each once by content; TransferError for a damaged one or one with other labels."""
    targets: dict[str, CheckpointInfo] = {}
    for path in find_checkpoints(specs):  # EvaluationError (a ValueError) for paths that hold none
        vetted = vet_checkpoint(path)
        if isinstance(vetted, CheckpointProblem):
            raise TransferError(f"target {vetted.path}: {vetted.error}")
        labels = tuple(vetted.manifest.label_names)
        for source in sources.values():
            if labels != source.label_names:
                raise TransferError(
                    f"target {vetted.path} was trained with labels {list(labels)} but source checkpoint "
                    f"{source.run_id} ({source.checkpoint_hash[:8]}) with {list(source.label_names)}: a prediction "
                    "of one cannot be compared with the other's label; transfer between checkpoints of the same "
                    "labels in the same order (choose sources with --sources)")
        targets.setdefault(vetted.checkpoint_hash, vetted)
    return list(targets.values())


def _max_length(info: CheckpointInfo) -> int:
    data = info.manifest.config.get("data")
    return int(data.get("max_length", DataConfig.max_length)) if isinstance(data, dict) else DataConfig.max_length


def _queries(rows: pd.DataFrame, prefix: str) -> list[Query]:
    """The model inputs of ``rows``: ``<prefix>_text`` alone, or with ``<prefix>_text_b`` for sentence pairs."""
    return [a if not isinstance(b, str) else (a, b) for a, b in zip(rows[f"{prefix}_text"], rows[f"{prefix}_text_b"])]


# ---------------------------------------------------------------- the plan and the run


def plan_transfer(targets: Sequence[str], config: TransferConfig, out: TransferStore) -> TransferPlan:
    """Every (source, target, attack key) not yet in ``out``, grouped into one replay job per target."""
    config.validate()
    rows = successful_rows(config)
    source_store = ResultStore(config.source_store)
    plan = TransferPlan(attack_keys=set(rows["attack_key"]))
    for checkpoint_hash, run_id in rows.drop_duplicates("checkpoint_hash")[["checkpoint_hash", "run_id"]].itertuples(
            index=False):
        plan.sources[checkpoint_hash] = load_source(source_store, checkpoint_hash, run_id)
    plan.targets = vet_targets(targets, plan.sources)
    for target in plan.targets:
        groups = []
        for (checkpoint_hash, key), group in rows.groupby(["checkpoint_hash", "attack_key"], sort=True):
            plan.texts_total += len(group)
            if out.path_for(checkpoint_hash, target.checkpoint_hash, key, group["example_id"]).is_file():
                plan.texts_already_done += len(group)
                continue
            groups.append(Group(plan.sources[checkpoint_hash], key, group))
        if groups:
            queries = [q for g in groups for q in (*_queries(g.rows, "original"), *_queries(g.rows, "perturbed"))]
            plan.groups[target.checkpoint_hash] = groups
            plan.jobs.append(ReplayJob(target.path, target.checkpoint_hash, _max_length(target),
                                       tuple(dict.fromkeys(queries)), config.batch_size))
    return plan


def transfer_rows(group: Group, target: CheckpointInfo, predictions: dict[Query, int]) -> list[dict[str, Any]]:
    """The transfer store's rows of one (source, target, attack key) from the target's ``predictions``."""
    rows = group.rows
    now = time.time()
    out = []
    for row, original, perturbed in zip(rows.to_dict("records"), _queries(rows, "original"),
                                        _queries(rows, "perturbed")):
        clean, adv = predictions[original], predictions[perturbed]
        unseen = unseen_words(row["substitutions"], group.source.train_words)
        out.append({
            "source_hash": group.source.checkpoint_hash, "source_run_id": group.source.run_id,
            "target_hash": target.checkpoint_hash, "target_run_id": target.manifest.run_id,
            "target_path": target.path, "attack_key": group.attack_key, "protocol": row["protocol"],
            "attack": row["attack"], "dataset": row["dataset"], "split": row["split"],
            "example_id": row["example_id"], "label": int(row["label"]),
            **{c: row[c] if isinstance(row[c], str) else None
               for c in ("original_text", "original_text_b", "perturbed_text", "perturbed_text_b", "substitutions")},
            "unseen_words": None if unseen is None else json.dumps(unseen),
            "target_clean_pred": clean, "target_adv_pred": adv, "target_correct": clean == int(row["label"]),
            "fooled": adv != int(row["label"]), "finished_at": now,
        })
    return out


def transfer(targets: Sequence[str], config: TransferConfig, pool: PoolConfig | None = None,
             address: str | None = None, local: bool = False) -> TransferReport:
    """Replay the source store's successes on ``targets`` (paths, globs, directories holding checkpoints);
    write what is missing to ``config.store`` and return the report with the whole store's transfer matrix.

    ``local``: classify in this process, one target after the other; else on Ray (``address``, or a
    local instance), one task per target with ``pool``'s resources.
    """
    from attack_workers.runtime.replay import replay_local, replay_on_ray

    out = TransferStore(config.store)
    plan = plan_transfer(targets, config, out)
    results = ResultStore(config.store)
    for target in plan.targets:
        results.write_checkpoint(target.record())  # the targets' manifests, next to their rows
    report = TransferReport(plan, pd.DataFrame(), pd.DataFrame())
    by_hash = {t.checkpoint_hash: t for t in plan.targets}

    def done(job: ReplayJob, predictions: list[int]) -> None:
        answers = dict(zip(job.queries, predictions))
        for group in plan.groups[job.checkpoint_hash]:
            out.write(transfer_rows(group, by_hash[job.checkpoint_hash], answers))

    def failed(job: ReplayJob, error: str) -> None:
        log.error("transfer to %s failed: %s", job.path, error)
        report.failed.append((job.path, error))

    started = time.perf_counter()
    if plan.jobs and local:
        replay_local(plan.jobs, done, failed)
    elif plan.jobs:
        from attack_workers.runtime.evaluation import ray_session
        from attack_workers.runtime.pool import PoolConfig

        with ray_session(address):
            replay_on_ray(plan.jobs, done, failed, pool or PoolConfig())
    report.seconds = time.perf_counter() - started
    rows = out.load()  # what this call's sources, targets and attack keys have, this run's and earlier runs'
    mine = rows[rows["source_hash"].isin(plan.sources) & rows["target_hash"].isin(by_hash)
                & rows["attack_key"].isin(plan.attack_keys)]
    report.summary, report.unseen = transfer_summary(mine), unseen_summary(mine)
    return report
