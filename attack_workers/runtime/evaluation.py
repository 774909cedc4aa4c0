"""Evaluate checkpoints: vet them, pick their examples, skip what the store has, run the pool.

``evaluate(checkpoints, EvalConfig(store=...))`` is the whole flow behind the CLI:

1. find and vet checkpoints (``attack_workers.runtime.checkpoints``); damaged ones are skipped and recorded;
2. reload each checkpoint's dataset from its manifest (``manifest.config["data"]``) or from
   ``EvalConfig.dataset``, and check labels, split hash and MLM vocabulary against it;
3. sample the examples (seeded), drop those already in the store under the same key, shard the rest;
4. run the shards on an ``AttackPool`` (starting a local Ray instance when none is connected),
   writing each shard's rows to the store as soon as it finishes.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from attack_workers.runtime.checkpoints import (
    CheckpointInfo,
    CheckpointProblem,
    EvaluationError,
    find_checkpoints,
    vet_checkpoint,
)
from attack_workers.attack.identity import directory_hash, resolve_encoder_path
from attack_workers.attack.protocols import AttackParams, attack_key, get_protocol, union_key
from attack_workers.attack.recipes import DEFAULT_ATTACK, parse_attacks
from attack_workers.runtime.shards import CheckpointTarget, Shard, ShardResult, plan_shards, select_examples
from attack_workers.results.store import ResultStore
from attack_workers.runtime.worker import WorkerConfig
from vda.config import DataConfig
from vda.data import SPLITS, DataError, Example, TaskData, load_task

if TYPE_CHECKING:  # pool.py imports ray; evaluation stays importable without starting it
    from attack_workers.runtime.pool import AttackPool, PoolConfig

log = logging.getLogger("attack_workers")


@dataclass(frozen=True)
class EvalConfig:
    store: str
    protocol: str = "vda-paper"
    split: str = "dev"  # the paper's analysis attacks the dev set
    dataset: str | None = None  # None: the dataset recorded in each checkpoint's manifest
    num_examples: int | None = None  # None: the protocol's default (paper: 1000; 300 for IMDB/Yelp)
    seed: int = 0  # example sampling
    params: AttackParams = field(default_factory=AttackParams)
    shard_size: int = 10  # examples per shard: the unit of retry, resume and load balancing
    # attack recipes (attack_workers.attack.recipes.ATTACKS), each its own attack key; several add union rows
    attacks: tuple[str, ...] = (DEFAULT_ATTACK,)
    # only the union is wanted: an example one attack broke is not attacked by the later ones (their
    # per-attack numbers are then incomplete); keyed apart from a full evaluation
    skip_broken: bool = False

    def validate(self) -> EvalConfig:
        get_protocol(self.protocol)
        parse_attacks(self.attacks)
        if self.skip_broken and len(self.attacks) < 2:
            raise EvaluationError(f"skip_broken (--union-only) needs two or more attacks, got {list(self.attacks)}")
        self.params.validate()
        if self.split not in SPLITS:
            raise EvaluationError(f"split {self.split!r} is unknown; use one of {', '.join(SPLITS)}")
        if self.num_examples is not None and self.num_examples < 1:
            raise EvaluationError(f"num_examples={self.num_examples}: the example set would be empty; use >= 1")
        if self.shard_size < 1:
            raise EvaluationError(f"shard_size={self.shard_size}: use >= 1")
        return self


@dataclass
class EvalPlan:
    targets: list[CheckpointTarget] = field(default_factory=list)
    shards: list[Shard] = field(default_factory=list)
    problems: list[CheckpointProblem] = field(default_factory=list)
    examples_total: int = 0
    examples_already_done: int = 0


@dataclass
class EvalReport:
    plan: EvalPlan
    summary: pd.DataFrame
    failed_shards: list[tuple[str, str]] = field(default_factory=list)  # (checkpoint path, error)
    examples_attacked: int = 0
    actor_deaths: int = 0
    seconds: float = 0.0  # wall time of the attacks (worker start-up included)

    @property
    def ok(self) -> bool:
        return not self.plan.problems and not self.failed_shards


class Planner:
    """Plans evaluations: vets checkpoints, picks their examples, leaves out what the store holds.

    Creating one loads the MLM (seconds; every classifier's vocabulary is checked against it), so
    one planner serves any number of ``plan`` calls: the sweep's pipeline creates it once and plans
    each checkpoint as it arrives. Datasets and the lexicon hash are cached between calls too.
    """

    def __init__(self, config: EvalConfig, worker: WorkerConfig) -> None:
        from vda.mlm import load_mlm, resolve_mlm_path

        self.config = config.validate()
        self.worker = worker
        self._tasks: dict[str, TaskData] = {}
        self._lexicon_specs: dict[str, Any] = {}  # data config -> LexiconSpec of its dataset's words
        self._lexicon_hashes: dict[Any, str] = {}
        try:  # once, before any checkpoint: a bad --mlm/--encoder is a usage error
            self._mlm, self._mlm_tokenizer = load_mlm(worker.mlm)
            self._identity = {"mlm": directory_hash(resolve_mlm_path(worker.mlm)),
                              "encoder": directory_hash(resolve_encoder_path(worker.encoder))}
        except (OSError, ValueError) as exc:  # MissingAssetError is an OSError
            raise EvaluationError(f"the masked LM {worker.mlm!r} or sentence encoder {worker.encoder!r} cannot be "
                                  f"loaded: {exc}") from None

    def with_config(self, config: EvalConfig) -> Planner:
        """A planner of ``config`` (another protocol, attack list or example count) that shares this one's
        loaded MLM and its dataset and lexicon caches: the sweep plans each attack pass with one, and
        the MLM is loaded once. ``worker`` (MLM, encoder) stays this planner's."""
        other = copy.copy(self)  # shallow: the caches are the same dicts, so a lexicon is built once for all
        other.config = config.validate()
        return other

    def plan(self, paths: Sequence[Path], store: ResultStore) -> EvalPlan:
        """Everything to do on the checkpoint directories ``paths`` (``find_checkpoints``), minus what
        ``store`` holds; unusable checkpoints end in ``problems``, the others' plans in ``store``."""
        plan = EvalPlan()
        for path in paths:
            vetted = vet_checkpoint(path)
            if isinstance(vetted, CheckpointProblem):
                plan.problems.append(vetted)
                continue
            try:
                targets, examples = self.targets(vetted)
            except ValueError as exc:  # DataError, VocabularyMismatchError, label/split mismatches
                plan.problems.append(CheckpointProblem(vetted.path, str(exc)))
                continue
            first = targets[0]
            if any((t.checkpoint_hash, t.attack_key) == (first.checkpoint_hash, first.attack_key)
                   for t in plan.targets):
                log.info("%s: same content as a checkpoint already planned; attacked once", vetted.path)
                continue
            store.write_checkpoint(vetted.record())
            remaining: dict[str, list[Example]] = {}
            for target in targets:  # one attack key per attack: rows of two attacks never mix
                store.record_plan(target.checkpoint_hash, target.attack_key, [e.id for e in examples])
                done = store.done_example_ids(target.checkpoint_hash, target.attack_key)
                remaining[target.attack_key] = [e for e in examples if e.id not in done]
                plan.targets.append(target)
                plan.examples_total += len(examples)
                plan.examples_already_done += len(examples) - len(remaining[target.attack_key])
            if self.config.skip_broken:  # every attack in order on one example, in one shard
                missing = {e.id for rest in remaining.values() for e in rest}
                todo = [e for e in examples if e.id in missing]
                plan.shards.extend(plan_shards(first, todo, self.config.shard_size, chain=tuple(targets[1:])))
            else:
                for target in targets:
                    plan.shards.extend(plan_shards(target, remaining[target.attack_key], self.config.shard_size))
        return plan

    def lexicon_hash(self, spec: Any = None) -> str:
        """Content hash of the word lexicon ``spec`` (default: the default lexicon), built here on first
        need (minutes, once per cache).

        Built by the planner so that the workers find it ready, and only once a checkpoint has
        passed its checks (a refused checkpoint never costs a build). The hash keys the rows:
        rebuilt vectors never mix with rows of the old ones.
        """
        from attack_workers.lexicon import vectors

        spec = spec or vectors.LexiconSpec(encoder=self.worker.encoder, mlm=self.worker.mlm)
        if spec not in self._lexicon_hashes:
            try:
                self._lexicon_hashes[spec] = vectors.load_lexicon(spec).content_hash
            except OSError as exc:  # MissingAssetError: WordNet/VADER/MR not provisioned
                raise EvaluationError(f"the word lexicon cannot be built: {exc}") from None
        return self._lexicon_hashes[spec]

    def lexicon_spec(self, data: DataConfig) -> Any:
        """The word lexicon of ``data``'s dataset: the default vocabulary plus the words of the dataset
        (every split, uncapped, so all checkpoints of one dataset share it) that it lacks."""
        from attack_workers.lexicon.vectors import spec_for_task

        whole = dataclasses.replace(data, max_train_examples=0, max_eval_examples=0, extra_train_file="")
        key = json.dumps(dataclasses.asdict(whole), sort_keys=True)
        if key not in self._lexicon_specs:
            self._lexicon_specs[key] = spec_for_task(self._task(whole), self.worker.encoder, self.worker.mlm,
                                                     self._mlm_tokenizer)
        return self._lexicon_specs[key]

    def target(self, info: CheckpointInfo) -> tuple[CheckpointTarget, list[Example]]:
        """The first attack's target (``targets``) and the examples."""
        targets, chosen = self.targets(info)
        return targets[0], chosen

    def targets(self, info: CheckpointInfo) -> tuple[list[CheckpointTarget], list[Example]]:
        """One target per attack of the config, in its order, and the examples they all attack.

        Raises ``CheckpointProblem``-worthy errors (ValueError subclasses) with the reason."""
        # Imported here: the package imports this module, and `python -m attack_workers.attack.attack_version`
        # must not find its module imported before it runs.
        from attack_workers.attack.attack_version import attack_code_identity

        data = self._data_config(info)
        task = self._task(data)
        self._check_task(info, task)
        self._check_vocab(info)
        examples = task.splits[self.config.split]
        n = self.config.num_examples or get_protocol(self.config.protocol).default_num_examples(task.name)
        chosen = select_examples(examples, n, self.config.seed)
        if not chosen:
            raise ValueError(f"no examples to attack: split {self.config.split!r} of {task.name} is empty")
        lexicon = self.lexicon_spec(data)
        identity = {**self._identity, **attack_code_identity(), "lexicon": self.lexicon_hash(lexicon),
                    "dataset": task.name,
                    "split": self.config.split, "split_hash": task.split_hash(self.config.split)}
        config = self.config
        union = union_key(config.protocol, config.params, identity, config.skip_broken)
        targets = [CheckpointTarget(
            path=info.path, checkpoint_hash=info.checkpoint_hash, run_id=info.manifest.run_id,
            protocol=config.protocol, params=config.params,
            attack_key=attack_key(config.protocol, config.params, identity, attack, config.skip_broken),
            dataset=task.name, split=config.split, text_columns=task.text_columns, max_length=data.max_length,
            lexicon_hash=identity["lexicon"], attack=attack, union_key=union, lexicon=lexicon)
            for attack in config.attacks]
        return targets, chosen

    def _data_config(self, info: CheckpointInfo) -> DataConfig:
        raw = info.manifest.config.get("data")
        if not isinstance(raw, dict):
            raise ValueError(f"{info.path}: manifest config has no 'data' section; pass --dataset")
        try:
            data = DataConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
        except TypeError as exc:
            raise ValueError(f"{info.path}: manifest data config is not understood ({exc}); pass --dataset") from None
        if self.config.dataset is not None:
            data = dataclasses.replace(data, dataset=self.config.dataset, max_eval_examples=0)
        return data

    def _task(self, data: DataConfig) -> TaskData:
        key = json.dumps(dataclasses.asdict(data), sort_keys=True)
        if key not in self._tasks:
            try:
                self._tasks[key] = load_task(data)
            except (DataError, FileNotFoundError) as exc:
                raise ValueError(f"dataset {data.dataset!r} cannot be loaded: {exc}") from None
        return self._tasks[key]

    def _check_task(self, info: CheckpointInfo, task: TaskData) -> None:
        trained = list(info.manifest.label_names)
        if list(task.label_names) != trained:
            raise ValueError(f"{info.path}: the checkpoint was trained with labels {trained} but dataset "
                             f"{task.name} has {list(task.label_names)}; attack it on the dataset it was trained on "
                             "(or a dataset with the same labels in the same order)")
        if self.config.dataset is None:
            recorded = info.manifest.dataset.get("split_hashes", {}).get(self.config.split)
            found = task.split_hash(self.config.split)
            if recorded and recorded != found:
                raise ValueError(f"{info.path}: the {self.config.split} split of {task.name} changed since training "
                                 f"(hash {found}, manifest {recorded}); restore the data or pass --dataset to "
                                 "attack another copy deliberately")

    def _check_vocab(self, info: CheckpointInfo) -> None:
        from transformers import AutoTokenizer

        from vda.checkpoint import MODEL_DIR
        from vda.mlm import check_same_vocab

        classifier_tokenizer = AutoTokenizer.from_pretrained(str(Path(info.path) / MODEL_DIR))
        check_same_vocab(classifier_tokenizer, self._mlm_tokenizer, self._mlm)


def plan_evaluation(checkpoints: Sequence[str], config: EvalConfig, worker: WorkerConfig,
                    store: ResultStore) -> EvalPlan:
    """Everything to do, minus what ``store`` already holds; raises ``EvaluationError`` on unusable input."""
    config.validate()  # a usage error (unknown protocol, bad parameter) is named before any path is looked at
    paths = find_checkpoints(checkpoints)  # a path that holds no checkpoint fails before the MLM loads
    plan = Planner(config, worker).plan(paths, store)
    if not plan.targets and plan.problems:
        details = "\n".join(f"  {p.path}: {p.error}" for p in plan.problems)
        raise EvaluationError(f"no checkpoint can be evaluated:\n{details}", plan.problems)
    return plan


def evaluate(checkpoints: Sequence[str], config: EvalConfig, worker: WorkerConfig | None = None,
             pool: PoolConfig | None = None, address: str | None = None, progress: bool = True,
             attack_pool: AttackPool | None = None) -> EvalReport:
    """Attack every checkpoint's examples not yet in the store; return the report with its summary.

    ``attack_pool``: an already started pool to reuse (its workers must use ``worker``'s MLM and
    encoder); by default a pool is started for this call and stopped after.
    """
    from attack_workers.runtime.pool import AttackPool, PoolConfig

    worker = worker or WorkerConfig()
    store = ResultStore(config.store)
    try:
        plan = plan_evaluation(checkpoints, config, worker, store)
    except EvaluationError as exc:  # skipped and recorded, as when some checkpoints are usable
        _record_skipped(store, exc.problems)
        raise
    _record_skipped(store, plan.problems)
    report = EvalReport(plan, pd.DataFrame())
    started = time.perf_counter()
    if plan.shards and attack_pool is not None:
        started_with = (attack_pool.worker_config.mlm, attack_pool.worker_config.encoder)
        if started_with != (worker.mlm, worker.encoder):
            raise EvaluationError(f"attack_pool runs MLM/encoder {started_with}, not {(worker.mlm, worker.encoder)}; "
                                  "its rows would be stored under the wrong key")
        stats = attack_pool.run(plan.shards, _writer(store), _failure_writer(store, report), progress)
        report.examples_attacked, report.actor_deaths = stats.examples_done, stats.actor_deaths
    elif plan.shards:
        log.info("%d shard(s) to attack; starting the Ray pool (workers load the models first)", len(plan.shards))
        with ray_session(address), AttackPool(worker, pool or PoolConfig(), max_workers=len(plan.shards)) as new_pool:
            stats = new_pool.run(plan.shards, _writer(store), _failure_writer(store, report), progress)
        report.examples_attacked, report.actor_deaths = stats.examples_done, stats.actor_deaths
    report.seconds = time.perf_counter() - started
    report.summary = store.load_summary([(t.checkpoint_hash, t.attack_key) for t in plan.targets])
    return report


def _record_skipped(store: ResultStore, problems: Sequence[CheckpointProblem]) -> None:
    for problem in problems:
        log.warning("skipping %s: %s", problem.path, problem.error)
        store.record_skipped_checkpoint(problem.path, problem.error)


def _writer(store: ResultStore) -> Any:
    def write(shard: Shard, result: ShardResult) -> None:
        store.write_results(result.rows)

    return write


def _failure_writer(store: ResultStore, report: EvalReport) -> Any:
    def record(shard: Shard, error: str, attempts: int) -> None:
        log.error("shard %s of %s failed after %d attempt(s): %s", shard.shard_id, shard.target.path, attempts, error)
        report.failed_shards.append((shard.target.path, error))
        store.record_failed_shard(shard, error, attempts)

    return record


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """Use the connected Ray; else connect to ``address`` or start a local instance (``connect_ray``), and
    disconnect after."""
    import ray

    from attack_workers.runtime.ray_compat import connect_ray

    if ray.is_initialized():
        yield
        return
    connect_ray(address)
    try:
        yield
    finally:
        ray.shutdown()
