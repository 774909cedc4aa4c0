"""Run a sweep: Ray Tune trials of the VDA fine-tuner, attacks pipelined on their checkpoints.

    python tune/sweep.py                                    # embedded default: MiniLM on built-in MR, local Ray
    python tune/sweep.py --config tune/configs/optuna.yaml sweep.num_samples=16 sweep.max_concurrent_trials=4
    python tune/sweep.py --resume --name vda-default        # continue an interrupted sweep
    python tune/sweep.py fixed.epochs=3 'search.vda.k={grid: [1, 3, 5]}'   # override single values
    python tune/sweep.py --config optuna --smoke-test      # minutes, sized for this machine, offline

Ray: ``--address`` or ``RAY_ADDRESS`` joins that cluster; otherwise a cluster started with
``ray start`` on this machine (the head node of ``ray up cluster.yaml``); otherwise a local Ray
of this machine's size is started, and GPU requests are dropped when it has no GPU.

Re-running an interrupted sweep with the same name continues it (``Tuner.restore``: trials resume from
their last epoch) if its configuration is unchanged; ``--resume`` continues it with its saved
configuration. Any other re-run (a finished sweep, a changed configuration such as a grid grown by a
value, a sweep stopped by ``--max-minutes``, a store whose Tune experiment is gone: an imported
study, a replaced machine) is a new Tune run over the same store: every trial
whose training key the store holds is reported from the store and not trained (``tune.study``), so
only the new cells train. ``--retrain-missing`` also retrains stored cells whose checkpoint is gone and
whose attacks are incomplete (they are otherwise counted missing).

One sweep runs per experiment directory at a time: a second one exits 2 naming the first
(``tune.lock``), instead of training the same cells again beside it.

``--max-minutes M``: after M minutes no trial starts training (it reports ``skipped_by_budget``);
running trials finish and are attacked, and the sweep exits 0 printing the cells done, missing and
the measured time per cell (``python -m tune.study status`` prints the same without running). Outputs, all under
``<sweep.output_dir>/<sweep.name>/``: ``store/`` (results store), ``summary.csv``/``summary.md``,
``plots/``, ``optuna.db`` (Optuna searcher), ``sweep.yaml`` (the resolved configuration).

``--smoke-test`` runs one trial of 2 steps on 32 examples with the packaged models (so it needs no
download), attacks 4 examples under every attack pass, shrinks ``sweep.asha.grace_period`` to its
single epoch, caps trial and attack resources to half of this machine each (GPUs only if it has
some) and is named ``<name>-smoke``; overrides given with it still win.

Sharp-mode candidate tables (``vda.candidates``): before any trial starts, the sweep makes the
shared table of every distinct training set-up it can know in advance (each variant, with the
grid/choice values searched on the keys the table depends on; ``table_configs``), as one Ray task
per table on this node with all its CPUs (and a GPU when trials use GPUs), so no trial pays for the
MLM passes over the training split. Trials whose table was not made up front (a range searched on
such a key, or a failed task) make it on first use: one trial per machine computes it under a
file lock, the others wait and load it, and tables are keyed by content, so nothing mixes. On a
multi-node cluster each node computes its own table once (its first trial), unless
``VDA_CACHE_DIR`` is on shared storage, where every node loads the one made here; a head node
without CPUs (``cluster.yaml``) makes none, and the first trial of each node does.

Exit status: 0 when every trial finished (or was skipped by ``--max-minutes``) and every checkpoint to
attack was attacked, 1 when a
trial failed or a checkpoint could not be attacked completely (both listed; the rest are in the
table; ``--resume`` retries what was not attacked), 2 for an unusable configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # run as a script (python tune/sweep.py): import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import yaml  # noqa: E402

from tune.config import (AttackSettings, SweepConfig, SweepSpec, TrialResources, load_sweep,  # noqa: E402
                         read_yaml, shipped_configs, sweep_choices, sweep_from_dict)
from tune.lock import SweepLockedError, exclusive_sweep  # noqa: E402
from vda.config import CHOICES, ConfigError, format_choices, to_plain  # noqa: E402
from vda.dotted import flatten  # noqa: E402

if TYPE_CHECKING:
    from tune.pipeline import Unattacked
    from tune.study import StoredCell, StudyStatus
    from vda.config import TrainConfig

log = logging.getLogger("tune.sweep")
REPO_ROOT = Path(__file__).resolve().parents[1]
# --smoke-test: every trial trains 2 steps of 1 epoch on 32 examples with the packaged models, and 4
# examples are attacked. The keys a variant or the search space may also set are replaced there too.
SMOKE_TRIAL = {"data.max_train_examples": 32, "data.max_eval_examples": 32, "epochs": 1, "max_steps": 2,
               "model": "default", "mlm": "default"}
SMOKE_SWEEP = {"num_samples": 1, "max_concurrent_trials": 1, "asha.grace_period": 1, "attack.num_examples": 4,
               "attack.workers": 1, "attack.mlm": "default", "attack.encoder": "default"}
# The training keys a trial's candidate table depends on: its key hashes the MLM, the tokenised training split
# (model's tokenizer, data.*), top_k, chunk_positions and the numerics (device, precision); mode, lam, cache_mb
# and shared_candidates decide whether the trial uses a shared table at all. A trailing '.' covers a section.
TABLE_KEYS = ("model", "mlm", "data.", "vda.top_k", "vda.chunk_positions", "vda.mode", "vda.lam", "vda.cache_mb",
              "vda.shared_candidates", "precision", "device")


class SweepError(RuntimeError):
    """The sweep cannot start as asked; the message says what to change."""


@dataclass
class SweepOutcome:
    output_dir: Path
    experiment_path: str
    num_trials: int
    failed_trials: list[str]  # trial ids
    table: str
    files: dict[str, Path]  # what analysis wrote: summary_csv, summary_md, plots...
    seconds: float
    unattacked: list[Unattacked] = field(default_factory=list)  # checkpoints not attacked completely, and why
    trained: int = 0  # trials that trained (not reported from the store, not skipped)
    reused: int = 0  # trials reported from the store
    skipped: int = 0  # trials not started: --max-minutes had passed
    missing: int = 0  # trials of stored cells whose checkpoint is gone and attacks incomplete (--retrain-missing)
    status: StudyStatus | None = None  # the study's cells after the run (tune.study)


@dataclass(frozen=True)
class _Placement:
    """Resources after fitting the sweep to the connected Ray cluster."""

    trial: TrialResources
    attack: AttackSettings
    max_concurrent_trials: int
    description: str


def storage_root(spec: SweepSpec) -> str:
    """Tune's ``storage_path``: a URI as given, a local path made absolute (Ray rejects relative ones)."""
    storage = spec.sweep.storage_path or spec.sweep.output_dir
    return storage.rstrip("/") if "://" in storage else str(Path(storage).expanduser().resolve())


def experiment_path(spec: SweepSpec) -> str:
    return f"{storage_root(spec)}/{spec.sweep.name}"


def trial_dirname(trial: Any) -> str:
    """Short trial directories (the default name repeats every parameter and the date)."""
    return trial.trial_id


def resolve_run(spec: SweepSpec, resume: bool) -> tuple[SweepSpec, bool]:
    """(the spec to run, whether to restore Tune's experiment).

    Tune's experiment is restored with ``--resume``, or to finish an interrupted run of the same
    configuration; every other re-run is a new Tune run over the same store, which reports the cells
    it holds (module doc). A new Tune run writes into the same experiment directory: its trials get new ids.
    """
    from ray import tune

    from tune.pipeline import INTERRUPTED_FILE

    out, path = spec.sweep.directory, experiment_path(spec)
    saved_file = out / "sweep.yaml"
    saved = sweep_from_dict(read_yaml(saved_file), str(saved_file)) if saved_file.exists() else None
    if resume and saved is None:
        raise SweepError(f"nothing to resume: {out} holds no sweep; run without --resume to start it")
    if resume:
        spec = saved
    if not tune.Tuner.can_restore(path):
        if saved is not None:
            log.info("%s holds an earlier sweep whose Tune experiment is gone: a new Tune run reuses its store", out)
        return spec, False
    if resume:
        return spec, True
    changed = _differences(saved.to_dict(), spec.to_dict()) if saved is not None else []
    if changed:
        log.info("sweep %r changed (%s): a new Tune run over the same store; stored cells are not trained again",
                 spec.sweep.name, "; ".join(changed[:5]))
        return spec, False
    return spec, (out / INTERRUPTED_FILE).exists()


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every dotted key whose value differs."""
    before, after = flatten(old), flatten(new)
    return [f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in sorted(set(before) | set(after))
            if before.get(k) != after.get(k)]


def connect(address: str | None) -> bool:
    """Join ``address``, ``RAY_ADDRESS`` or a ``ray start`` cluster, else start a local Ray whose workers
    import this checkout (``connect_ray``); True if local."""
    from attack_workers.runtime.ray_compat import connect_ray

    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return connect_ray(address, local_runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})


def place(spec: SweepSpec, local: bool) -> _Placement:
    """Fit trials and attack workers into the connected Ray (see ``fit_resources``)."""
    import ray

    total = ray.cluster_resources()
    return fit_resources(spec, total.get("CPU", 0.0), total.get("GPU", 0.0), local)


def fit_resources(spec: SweepSpec, cpus: float, gpus: float, local: bool) -> _Placement:
    """Fit trials and attack workers into a local Ray of ``cpus``/``gpus`` (drop GPUs it lacks, cap
    concurrency; SweepError when not even one trial fits); a cluster autoscales, so it is taken as is."""
    sweep = spec.sweep
    trial, attack, concurrent = sweep.trial, sweep.attack, sweep.max_concurrent_trials
    if local:
        if not gpus and (trial.gpus or attack.gpus):
            log.warning("no GPU on this machine: trials and attack workers run on CPUs")
            trial, attack = dataclasses.replace(trial, gpus=0.0), dataclasses.replace(attack, gpus=0.0)
        workers = attack.workers if attack.enabled else 0
        room = [math.floor((cpus - workers * attack.cpus) / trial.cpus + 1e-9)]
        if trial.gpus:
            room.append(math.floor((gpus - workers * attack.gpus) / trial.gpus + 1e-9))
        if min(room) < 1:
            raise SweepError(f"this machine ({cpus:g} CPU, {gpus:g} GPU) has no room for a trial "
                             f"({trial.cpus:g} CPU, {trial.gpus:g} GPU) next to {workers} attack worker(s) "
                             f"({attack.cpus:g} CPU, {attack.gpus:g} GPU each); lower sweep.trial or sweep.attack "
                             "resources, or sweep.attack.workers")
        concurrent = min(concurrent, min(room))
    where = "local Ray" if local else "Ray cluster"
    description = (f"{where} with {cpus:g} CPU, {gpus:g} GPU: up to {concurrent} trial(s) at a time "
                   f"({trial.cpus:g} CPU, {trial.gpus:g} GPU each)")
    if attack.enabled:
        description += f"; {attack.workers} attack worker(s) ({attack.cpus:g} CPU, {attack.gpus:g} GPU each)"
    return _Placement(trial, attack, concurrent, description)


@dataclass(frozen=True)
class _Reuse:
    """What every trial of this run is given to decide whether it trains (``tune.study.decide``)."""

    training_code: int
    stored: dict[str, StoredCell]
    retrain_missing: bool = False
    deadline: float | None = None  # unix time after which no trial starts training


def build_tuner(spec: SweepSpec, placement: _Placement, restore: bool, progress: bool, reuse: _Reuse) -> Any:
    """A new Tuner for ``spec``, or the interrupted one restored (Tune keeps its original settings)."""
    from ray import tune

    from tune.pipeline import AttackPipeline
    from tune.search import ObjectiveOptunaSearch, build_scheduler, build_searcher, checkpoint_config
    from tune.space import param_space
    from tune.study import cell_table
    from tune.trainable import train_trial

    trainable = tune.with_resources(
        tune.with_parameters(train_trial, fixed=spec.fixed, variants=spec.variants, cpus=placement.trial.cpus,
                             training_code=reuse.training_code, stored=cell_table(reuse.stored),
                             retrain_missing=reuse.retrain_missing, deadline=reuse.deadline),
        {"cpu": placement.trial.cpus, "gpu": placement.trial.gpus})
    if restore:
        return tune.Tuner.restore(experiment_path(spec), trainable=trainable)
    out = spec.sweep.directory
    out.mkdir(parents=True, exist_ok=True)
    searcher = build_searcher(spec, out, placement.max_concurrent_trials)
    told = searcher if isinstance(searcher, ObjectiveOptunaSearch) else None
    pipeline = AttackPipeline(spec, placement.attack, out, told, progress, reuse.training_code)
    sweep = spec.sweep
    tuner = tune.Tuner(
        trainable,
        param_space=param_space(spec.search, spec.variants, sweep.searcher),
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=build_scheduler(spec),
                                    num_samples=sweep.num_samples, trial_dirname_creator=trial_dirname,
                                    max_concurrent_trials=placement.max_concurrent_trials if told else None),
        run_config=tune.RunConfig(name=sweep.name, storage_path=storage_root(spec),
                                  checkpoint_config=checkpoint_config(spec),
                                  failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
                                  callbacks=[pipeline], verbose=1 if progress else 0))
    (out / "sweep.yaml").write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))
    return tuner


def run_sweep(spec: SweepSpec, resume: bool = False, address: str | None = None, progress: bool = True,
              max_minutes: float | None = None, retrain_missing: bool = False) -> SweepOutcome:
    """Train what the store lacks, attack and report; uses the connected Ray if there is one, else connects
    (and disconnects). ``max_minutes``: no trial starts training after that long. One sweep per
    experiment directory at a time: a second one raises SweepLockedError (``tune.lock``)."""
    started = time.time()
    with exclusive_sweep(spec.sweep.directory):
        return _run_locked(spec, resume, address, progress, max_minutes, retrain_missing, started)


def _run_locked(spec: SweepSpec, resume: bool, address: str | None, progress: bool, max_minutes: float | None,
                retrain_missing: bool, started: float) -> SweepOutcome:
    """``run_sweep`` once this process holds the experiment directory (``tune.lock``)."""
    import ray

    from analysis.summary import write_report
    from tune.pipeline import unattacked_checkpoints
    from tune.search import optuna_storage_url
    from tune.study import BUDGET_SKIPPED, MISSING, REUSED, planned_cells, stored_cells, study_status
    from vda.training_version import training_code_version

    spec, restore = resolve_run(spec, resume)
    out = spec.sweep.directory
    version = training_code_version()
    stored = stored_cells(out / "store", spec.sweep.attack)
    reuse = _Reuse(version, stored, retrain_missing, None if max_minutes is None else started + 60 * max_minutes)
    own = not ray.is_initialized()
    local = connect(address) if own else True
    try:
        placement = place(spec, local)
        print(f"sweep {spec.sweep.name}: {placement.description}; {len(stored)} trained cell(s) in the store",
              flush=True)
        planned = planned_cells(spec, version)
        if planned is None or any(key not in stored for key in planned):  # every cell stored: no table needed
            prepare_candidate_tables(spec, placement, progress)
        results = build_tuner(spec, placement, restore, progress, reuse).fit()
    finally:
        if own:
            ray.shutdown()
    optuna_url = optuna_storage_url(out) if spec.sweep.searcher == "optuna" else None
    table, files = write_report(out / "store", out, spec.sweep.objectives, optuna_url, spec.sweep.name)
    failed = [r.path.rsplit("/", 1)[-1] for r in results if r.error is not None]
    last = [r.metrics or {} for r in results if r.error is None]
    reused, skipped, missing = (sum(bool(m.get(marker)) for m in last) for marker in (REUSED, BUDGET_SKIPPED, MISSING))
    return SweepOutcome(out, experiment_path(spec), len(results), failed, table, files, time.time() - started,
                        unattacked_checkpoints(out), trained=len(last) - reused - skipped - missing, reused=reused,
                        skipped=skipped, missing=missing, status=study_status(spec, out / "store", version))


def table_configs(spec: SweepSpec) -> list[TrainConfig]:
    """One config per distinct shared candidate table the sweep's trials will load, known before any trial runs.

    Each variant (or the fixed block alone) with each combination of the grid/choice values searched on
    ``TABLE_KEYS``; configs without a shared table are dropped, configs with the same table settings kept
    once. A range searched on a table key leaves every table to the trials: its values are not known yet.
    """
    from tune.space import train_config
    from vda.candidates import uses_shared_file

    searched = {key: dist for key, dist in spec.search.items() if _is_table_key(key)}
    ranged = [key for key, dist in searched.items() if dist.kind not in ("grid", "choice")]
    if ranged:
        log.info("no candidate table made up front: %s searched over a range; each trial makes or loads its own",
                 ", ".join(ranged))
        return []
    combos = [dict(zip(searched, values)) for values in itertools.product(*(d.values for d in searched.values()))]
    found: dict[str, TrainConfig] = {}
    for overrides in [*spec.variants.values()] or [{}]:
        for combo in combos:
            cfg = train_config(spec.fixed, {**overrides, **combo}, "candidate table")
            if uses_shared_file(cfg.vda):
                found.setdefault(_table_settings(cfg), cfg)
    return list(found.values())


def _is_table_key(key: str) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in TABLE_KEYS)


def _table_settings(cfg: TrainConfig) -> str:
    """What decides a shared table's key, short of loading anything: equal settings, equal table."""
    return json.dumps({"model": cfg.model, "mlm": cfg.mlm, "data": dataclasses.asdict(cfg.data),
                       "top_k": cfg.vda.top_k, "chunk_positions": cfg.vda.chunk_positions, "device": cfg.device,
                       "precision": cfg.precision}, sort_keys=True)


def prepare_candidate_tables(spec: SweepSpec, placement: _Placement, progress: bool) -> list[Path]:
    """Make every table of ``table_configs`` on this node before the trials start; their directories.

    One Ray task per table, with every CPU of this node that is free (nothing else runs yet) and one
    GPU when trials use GPUs, so the table is computed on the device (and in the precision) the trials
    will train on: both are part of its key. A task that fails is logged: its trials make the table.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    configs = table_configs(spec)
    if not configs:
        return []
    node = ray.get_runtime_context().get_node_id()
    resources = next(n["Resources"] for n in ray.nodes() if n["NodeID"] == node)
    cpus = min(resources.get("CPU", 0.0), ray.available_resources().get("CPU", 0.0))
    gpus = 1.0 if placement.trial.gpus > 0 else 0.0
    if cpus < 1 or gpus > resources.get("GPU", 0.0):
        log.info("candidate tables are left to the trials: this node has %g free CPU and %g GPU (needs 1 CPU, "
                 "%g GPU)", cpus, resources.get("GPU", 0.0), gpus)
        return []
    started = time.time()
    task = ray.remote(_prepare_table).options(
        num_cpus=cpus, num_gpus=gpus, scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
    refs = [task.remote(cfg, int(cpus), progress) for cfg in configs]
    paths = []
    for ref in refs:
        try:
            path = ray.get(ref)
        except ray.exceptions.RayError as exc:
            log.warning("a candidate table could not be made up front; its trials make it themselves: %s", exc)
            continue
        if path is not None:
            paths.append(path)
    print(f"candidate tables: {len(paths)} ready in {time.time() - started:.0f} s "
          f"({', '.join(p.name for p in paths)})", flush=True)
    return paths


def _prepare_table(cfg: TrainConfig, threads: int, progress: bool) -> Path | None:
    """The Ray task: ``vda.train.prepare_candidates`` with ``threads`` torch threads (the task's CPUs)."""
    from vda.train import prepare_candidates

    return prepare_candidates(dataclasses.replace(cfg, num_threads=threads), progress)


def smoke_test_overrides(spec: SweepSpec, cpus: float, gpus: float) -> list[str]:
    """Overrides that shrink ``spec`` to a smoke test that fits a machine of ``cpus``/``gpus``.

    Every trial trains 2 steps with the packaged models (a smoke test checks the sweep machinery
    in minutes, offline; it does not download or train the configured backbone), the scheduler's
    grace period fits its single epoch, one trial and one attack worker share the machine, and
    results go to ``results/`` when ``sweep.output_dir``'s parent (a cluster mount) is missing.
    """
    out = [f"fixed.{key}={value}" for key, value in SMOKE_TRIAL.items()]
    out += [f"sweep.{key}={value}" for key, value in SMOKE_SWEEP.items()]
    out += _smoke_resources(spec.sweep, cpus, gpus)
    for name, overrides in spec.variants.items():
        shrunk = {key: SMOKE_TRIAL.get(key, value) for key, value in overrides.items()}
        if shrunk != overrides:
            out.append(f"variants.{name}={json.dumps(shrunk)}")
    kind = "grid" if spec.sweep.searcher == "grid" else "choice"
    out += [f"search.{key}={{{kind}: [{json.dumps(SMOKE_TRIAL[key])}]}}" for key in spec.search if key in SMOKE_TRIAL]
    passes = spec.sweep.attack.passes
    if any(p.num_examples for p in passes):  # a pass's own count: every pass attacks the smoke test's examples
        shrunk = [{**to_plain(dataclasses.asdict(p)), "num_examples": 0} for p in passes]
        out.append(f"sweep.attack.passes={json.dumps(shrunk)}")
    if "://" not in spec.sweep.output_dir and not Path(spec.sweep.output_dir).expanduser().resolve().parent.is_dir():
        out.append(f"sweep.output_dir={SweepConfig.output_dir}")
    return out


def _smoke_resources(sweep: SweepConfig, cpus: float, gpus: float) -> list[str]:
    """Trial and attack worker resources capped so that one of each fits side by side on this machine."""
    attack_gpu = sweep.attack.enabled and sweep.attack.gpus > 0
    cpu_share = cpus / 2 if sweep.attack.enabled else cpus
    gpu_share = gpus / 2 if attack_gpu and sweep.trial.gpus > 0 else gpus
    return [f"sweep.trial.cpus={min(sweep.trial.cpus, cpu_share)}",
            f"sweep.trial.gpus={min(sweep.trial.gpus, gpu_share)}",
            f"sweep.attack.cpus={min(sweep.attack.cpus, cpu_share)}",
            f"sweep.attack.gpus={min(sweep.attack.gpus, gpu_share)}"]


def machine_resources() -> tuple[float, float]:
    """(CPUs this process may use, GPUs visible): what a local Ray started here would offer."""
    import torch

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return float(cpus), float(torch.cuda.device_count())


def load_smoke_test(config: str | None, overrides: list[str]) -> SweepSpec:
    """The sweep ``config`` + ``overrides`` shrunk by ``smoke_test_overrides`` (``overrides`` still win),
    under its own name so that a later full run of the same config does not collide with it."""
    spec = load_sweep(config, overrides)
    spec = load_sweep(config, smoke_test_overrides(spec, *machine_resources()) + overrides)
    return dataclasses.replace(spec, sweep=dataclasses.replace(spec.sweep, name=f"{spec.sweep.name}-smoke"))


def _help_epilog() -> str:
    allowed = ["allowed values:", *format_choices(sweep_choices()), "",
               "training keys (fixed.<key>, and the keys of variants and search; python -m vda.train --help):",
               *format_choices(CHOICES)]
    return "\n\n".join([*__doc__.split("\n\n")[1:], "\n".join(allowed)])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python tune/sweep.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_help_epilog())
    parser.add_argument("overrides", nargs="*",
                        help="key=value overrides: sweep.num_samples=8, fixed.vda.mode=paper, "
                             "'search.vda.sigma={grid: [0.5, 2.0]}', 'variants.ce={vda.loss: ce}'")
    parser.add_argument("--config", help=f"sweep YAML, or a shipped config's name: {', '.join(shipped_configs())} "
                                         "(default: default)")
    parser.add_argument("--name", help="experiment name (= sweep.name)")
    parser.add_argument("--resume", action="store_true", help="continue the named sweep with its saved configuration")
    parser.add_argument("--address", help="Ray cluster to join, e.g. 'auto' or host:port (default: see above)")
    parser.add_argument("--smoke-test", action="store_true",
                        help="a tiny version of the sweep sized for this machine: 1 trial of 2 steps on the packaged "
                             "models, 4 attacked examples, named <name>-smoke")
    parser.add_argument("--max-minutes", type=_minutes,
                        help="no trial starts training after this many minutes; running ones finish and are "
                             "attacked, and the sweep exits 0 listing the cells still missing")
    parser.add_argument("--retrain-missing", action="store_true",
                        help="train again the stored cells whose checkpoint is gone and whose attacks are "
                             "incomplete (default: count them missing)")
    parser.add_argument("--quiet", action="store_true", help="no trial table or progress bars")
    return parser


def _minutes(text: str) -> float:
    """An argparse type: a finite number of minutes >= 0."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of minutes >= 0")
    return value


def main(argv: list[str] | None = None) -> int:
    # intermixed: overrides may come before and after options (... sweep.x=1 --quiet fixed.y=2)
    args = _parser().parse_intermixed_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    overrides = args.overrides + ([f"sweep.name={args.name}"] if args.name else [])
    try:
        spec = load_smoke_test(args.config, overrides) if args.smoke_test else load_sweep(args.config, overrides)
        outcome = run_sweep(spec, args.resume, args.address, progress=not args.quiet, max_minutes=args.max_minutes,
                            retrain_missing=args.retrain_missing)
    except (ConfigError, SweepError, SweepLockedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(outcome.table)
    failed = ""
    if outcome.failed_trials:
        failed = f", {len(outcome.failed_trials)} failed: {', '.join(outcome.failed_trials)}"
    out = outcome.output_dir
    print(f"\nsweep {out.name} done in {outcome.seconds / 60:.1f} min, {outcome.num_trials} trial(s){failed}: "
          f"{outcome.trained} trained, {outcome.reused} reported from the store, {outcome.skipped} not started "
          f"(--max-minutes)"
          + (f", {outcome.missing} missing (checkpoint gone; --retrain-missing trains them)" if outcome.missing else "")
          + ". "
          f"Store: {out / 'store'}  Table: {out / 'summary.md'} (.csv)  Plots: {out / 'plots'}/  "
          f"Tune experiment: {outcome.experiment_path}")
    if outcome.status is not None:
        print(outcome.status.format())
    for u in outcome.unattacked:
        print(f"not attacked completely: trial {u.trial_id}: {u.path}: {u.reason}", file=sys.stderr)
    if outcome.unattacked:
        print(f"{len(outcome.unattacked)} checkpoint(s) were not attacked completely (listed in "
              f"{out / 'unattacked.json'}); fix the cause and continue with --resume", file=sys.stderr)
    return 1 if outcome.failed_trials or outcome.unattacked else 0


if __name__ == "__main__":
    sys.exit(main())
