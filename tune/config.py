"""The sweep YAML, read and validated in one place: ``load_sweep(path, overrides) -> SweepSpec``.

Four blocks (``tune/configs/default.yaml`` is the commented example)::

    fixed:     a TrainConfig fragment (vda.config keys), shared by every trial
    variants:  optional named sets of dotted overrides: training methods and ablations
    search:    dotted TrainConfig key -> distribution (``tune.space``)
    sweep:     SweepConfig: searcher, objectives, resources, attacks, storage

``sweep.attack`` attacks every checkpoint in one or more *passes* (``AttackPass``: a protocol and
its attacks), all on one pool of attack actors::

    attack:                       # the single-pass shorthand: one protocol, as before
      protocol: vda-paper
      attacks: [bert-attack]

    attack:                       # several passes; every checkpoint gets each
      passes:
        - vda-paper                                               # = {protocol: vda-paper}: BERT-Attack
        - {protocol: strict, attacks: [bert-attack, textfooler, pwws], num_examples: 80}
      objective: strict           # the pass the attack objectives read ('' or absent: the first)

Every problem, in any block, is collected into one ``vda.config.ConfigError`` naming the key:
unknown keys with close matches, bad ranges, and every value a trial could be given (each grid or
choice value, each range end) checked by ``vda.config`` as the trial itself will be.
``key=value`` overrides address the blocks: ``sweep.num_samples=8``, ``fixed.epochs=2``,
``search.vda.sigma={grid: [0.5, 2.0]}``, ``variants.ce={vda.loss: ce}``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from attack_workers.attack.protocols import PROTOCOLS, AttackParams
from attack_workers.attack.recipes import ATTACKS, parse_attacks
from tune.space import VARIANT_KEY, Distribution, train_config
# vda.config's dataclass builder and checks, shared so both configs report problems alike
from vda.config import ConfigError, apply_overrides, build_dataclass, check_one_of, describe_source, to_plain
from vda.data import SPLITS
from vda.dotted import lookup, merge, nest

SECTIONS = ("fixed", "variants", "search", "sweep")
SWEEP_CHOICES: dict[str, dict[str, str]] = {
    "sweep.searcher": {
        "grid": "Tune's variant generator: every grid value x variant, ranges sampled (seeded)",
        "optuna": "Optuna's TPE (seeded, kept in optuna.db), told each trial's objectives once its attack is done",
    },
    "sweep.scheduler": {
        "none": "every trial trains all its epochs",
        "asha": "ASHA stops poor trials early on fixed.selection_metric (after sweep.asha.grace_period epochs)",
    },
    "sweep.attack.checkpoints": {
        "best": "each trial's best epoch (by fixed.selection_metric), attacked when the trial ends",
        "last": "each trial's last epoch, attacked when the trial ends",
        "every_epoch": "every epoch's checkpoint, as it is reported (paper Figure 4)",
    },
}
"""Enumerated sweep keys with each value's meaning; ``sweep_choices()`` adds objectives and protocols."""
SEARCHERS = tuple(SWEEP_CHOICES["sweep.searcher"])
SCHEDULERS = tuple(SWEEP_CHOICES["sweep.scheduler"])
ATTACKED_CHECKPOINTS = tuple(SWEEP_CHOICES["sweep.attack.checkpoints"])
CONFIG_DIR = Path(__file__).parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"


@dataclass(frozen=True)
class Objective:
    mode: str  # "max" or "min"
    from_attack: bool  # known only once the attack pool has attacked the trial's checkpoint
    description: str  # what --help prints


OBJECTIVES = {
    "dev_acc": Objective("max", False, "maximise the checkpoint's accuracy on the whole dev split (from training)"),
    "dev_loss": Objective("min", False, "minimise the checkpoint's dev cross-entropy (from training)"),
    "clean_acc": Objective("max", True, "maximise the paper's Ori Acc: accuracy on the attacked examples"),
    "attack_acc": Objective("max", True, "maximise the paper's Att Acc: accuracy under attack in the objective "
                                        "pass (sweep.attack.objective; the union of its attacks when it has "
                                        "several)"),
}


def sweep_choices() -> dict[str, dict[str, str]]:
    """Every enumerated sweep key with its values' meanings; protocols are read from attack_workers at run time."""
    return {**SWEEP_CHOICES,
            "sweep.objectives": {name: o.description for name, o in OBJECTIVES.items()},
            "sweep.attack.passes[].protocol": {p.name: p.description for p in PROTOCOLS.values()},
            "sweep.attack.passes[].attacks": {a.name: a.description for a in ATTACKS.values()}}


@dataclass(frozen=True)
class TrialResources:
    cpus: float = 1.0  # Ray CPUs per trial; also its torch threads unless fixed.num_threads is set
    gpus: float = 0.0  # fractions share a GPU (0.5: two trials per GPU); dropped on a local CPU-only Ray


@dataclass(frozen=True)
class AttackPass:
    """One attack pass: every checkpoint the sweep attacks is attacked under ``protocol`` by each of ``attacks``.

    Each attack is its own attack key in the store; two or more add union rows (robust only if every
    attack failed), which are then the pass's headline (and objective) key.
    """

    protocol: str = "vda-paper"  # attack_workers.attack.protocols.PROTOCOLS
    attacks: tuple[str, ...] = ("bert-attack",)  # attack recipes (attack_workers.attack.recipes.ATTACKS)
    skip_broken: bool = False  # union only: an example one attack broke is not attacked by the rest (faster)
    # 0: sweep.attack.num_examples. Fewer attack a prefix of the same seeded sample (paired with the other passes)
    num_examples: int = 0


PASS_SHORTHAND = ("protocol", "attacks", "skip_broken")  # sweep.attack.<key>: one pass, without a passes list


@dataclass(frozen=True)
class AttackSettings:
    enabled: bool = True
    # the attack passes (one pool serves them all); in YAML either a `passes` list or the single-pass shorthand
    # `protocol`/`attacks`/`skip_broken` directly under sweep.attack (tune.config's module doc)
    passes: tuple[AttackPass, ...] = (AttackPass(),)
    # the protocol of the pass whose headline key (its union, or its only attack) gives the clean_acc and
    # attack_acc objectives Optuna is told; '' = the first pass
    objective: str = ""
    num_examples: int = 100  # seeded sample of the split, the same for every checkpoint (a pass may take fewer)
    split: str = "dev"
    seed: int = 0  # example sampling
    checkpoints: str = "best"  # best | last (per trial, when it ends) | every_epoch (paper Figure 4)
    shard_size: int = 10  # examples per unit of work: retry, resume and load balancing
    workers: int = 1  # attack actors, held for the whole sweep
    cpus: float = 1.0  # per worker
    gpus: float = 0.0  # per worker; dropped on a local CPU-only Ray
    mlm: str = "default"  # candidate MLM ('default': packaged) or a local BertForMaskedLM directory
    encoder: str = "default"  # sentence encoder of the similarity constraint ('default': packaged MiniLM)
    params: AttackParams = field(default_factory=AttackParams)  # shared by every pass

    @property
    def objective_pass(self) -> AttackPass:
        """The pass the attack objectives are read from: the one named by ``objective``, else the first."""
        return next((p for p in self.passes if p.protocol == self.objective), self.passes[0])

    def examples(self, attack_pass: AttackPass) -> int:
        """How many examples ``attack_pass`` attacks per checkpoint."""
        return attack_pass.num_examples or self.num_examples


@dataclass(frozen=True)
class AshaSettings:
    grace_period: int = 1  # epochs every trial runs before it can be stopped
    reduction_factor: float = 2.0


@dataclass(frozen=True)
class SweepConfig:
    name: str = "vda-sweep"  # experiment name: <output_dir>/<name>/ and the Tune experiment directory
    searcher: str = "grid"  # grid (Tune's grid/random variants) | optuna (TPE, seeded)
    num_samples: int = 1  # grid: repeats of the whole grid; optuna: number of trials
    max_concurrent_trials: int = 1
    objectives: tuple[str, ...] = ("attack_acc", "dev_acc")  # one: single-objective; two: Pareto front
    scheduler: str = "none"  # none | asha (stops trials early on fixed.selection_metric)
    asha: AshaSettings = field(default_factory=AshaSettings)
    seed: int = 0  # searcher seed (Optuna's TPE, Tune's random sampling)
    max_failures: int = 1  # retries of a failing trial before it is marked failed
    output_dir: str = "results"  # local: <output_dir>/<name>/{store, summary.*, plots, optuna.db, sweep.yaml}
    storage_path: str = ""  # Tune experiments and checkpoints: '' = output_dir; or a URI (s3://bucket/path)
    trial: TrialResources = field(default_factory=TrialResources)
    attack: AttackSettings = field(default_factory=AttackSettings)

    @property
    def needs_attack_results(self) -> bool:
        return any(OBJECTIVES[o].from_attack for o in self.objectives if o in OBJECTIVES)

    @property
    def directory(self) -> Path:
        """``<output_dir>/<name>``, absolute: the store, summaries, plots and the saved config live here."""
        return (Path(self.output_dir).expanduser() / self.name).resolve()


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: what every trial shares, what varies, and how the sweep runs."""

    fixed: dict[str, Any]
    variants: dict[str, dict[str, Any]]
    search: dict[str, Distribution]
    sweep: SweepConfig
    source: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as YAML would hold it (saved next to the results; compared on resume)."""
        return {
            "fixed": self.fixed,
            "variants": self.variants,
            "search": {k: {d.kind: list(d.values)} for k, d in self.search.items()},
            "sweep": to_plain(dataclasses.asdict(self.sweep)),
        }


def shipped_configs() -> list[str]:
    """Names of the sweep configs in tune/configs/ (local_cluster.yaml is a Ray cluster config)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if p.stem != "local_cluster")


def read_yaml(path: str | Path) -> dict[str, Any]:
    source = str(path)
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"file not found; pass a sweep YAML or a shipped config name "
                           f"({', '.join(shipped_configs())}) to --config"], source) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], source) from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError([f"expected a mapping with blocks {', '.join(SECTIONS)}"], source)
    return loaded or {}


def config_path(name_or_path: str | Path | None) -> Path:
    """A YAML path, or the name of a shipped config (``optuna`` -> ``tune/configs/optuna.yaml``).

    Names work from any directory, e.g. under ``ray submit``, which runs the script from ``~``.
    """
    if name_or_path is None:
        return DEFAULT_CONFIG
    path = Path(name_or_path).expanduser()
    shipped = CONFIG_DIR / f"{path.stem}.yaml"
    if not path.exists() and path.parent == Path(".") and shipped.exists():
        return shipped
    return path


def load_sweep(path: str | Path | None = None, overrides: list[str] | None = None) -> SweepSpec:
    """Read a sweep YAML (default: ``tune/configs/default.yaml``), apply overrides, validate everything."""
    path = config_path(path)
    return sweep_from_dict(apply_sweep_overrides(read_yaml(path), overrides or []), describe_source(path, overrides))


def apply_sweep_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``search.<dotted key>=...`` and ``variants.<name>=...`` set one entry; other keys nest as usual."""
    out = dict(raw)
    nested = []
    for item in overrides:
        key, _, text = item.partition("=")
        section, _, rest = key.strip().partition(".")
        if section in ("search", "variants") and rest and "=" in item:
            out[section] = {**(out.get(section) or {}), rest: yaml.safe_load(text)}
        else:
            nested.append(item)
    return apply_overrides(out, nested)


def sweep_from_dict(raw: Mapping[str, Any], source: str = "sweep config") -> SweepSpec:
    """Build and validate a ``SweepSpec``; raise one ``ConfigError`` listing every problem."""
    problems: list[str] = []
    for key in raw:
        check_one_of(problems, "block", key, SECTIONS)
    fixed = _mapping(raw, "fixed", problems)
    variants = _variants(raw, problems)
    search = _search(raw, problems)
    raw_sweep, passes = _attack_passes(raw.get("sweep") or {}, problems)
    sweep = build_dataclass(SweepConfig, raw_sweep, "sweep.", problems)
    if passes:
        sweep = dataclasses.replace(sweep, attack=dataclasses.replace(sweep.attack, passes=passes))
    problems += _check_sweep(sweep, search, variants)
    problems += _check_trials(fixed, variants, search)
    if not problems:
        problems += _check_asha(sweep, fixed, variants, search)
        fixed, variants = _absolute_paths(fixed, variants, problems)
    if problems:
        raise ConfigError(problems, source)
    return SweepSpec(fixed, variants, search, sweep, source)


# Config values that may name local files: made absolute at launch, because a trial runs in another
# directory (Ray's trial directory, another node). Missing ones are reported before any trial starts.
LOCAL_FILES = ("data.extra_train_file", "data.dataset")  # always a path, once not 'mr' / 'hf:...'
LOCAL_MODELS = ("model", "mlm")  # a path only where one exists; otherwise a hub id or 'default'


def _absolute_paths(fixed: dict[str, Any], variants: dict[str, dict[str, Any]],
                    problems: list[str]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``fixed`` and ``variants`` with local paths resolved against the launch directory.

    Links are followed, so a trial records the file it really read (e.g. the keyed ADA set behind
    ``results/ada/adversarial.jsonl``). A variant is checked only for the paths it sets itself.
    """
    def resolved(base: Mapping[str, Any], overrides: Mapping[str, Any], where: str,
                 inherited: Mapping[str, str]) -> dict[str, str]:
        flat = dataclasses.asdict(train_config(base, overrides, where))
        changed = {}
        for key in LOCAL_FILES + LOCAL_MODELS:
            value = str(lookup(flat, key) or "")
            if value in ("", "mr", "default", inherited.get(key)) or value.startswith("hf:"):
                continue
            path = Path(value).expanduser()
            if path.exists():
                if str(path.resolve()) != value:
                    changed[key] = str(path.resolve())
            elif key in LOCAL_FILES:
                hint = " (make it with python -m attack_workers.ada CKPT --out DIR)" if "train_file" in key else ""
                problems.append(f"{where}: {key}: {value!r} does not exist (relative to {Path.cwd()}){hint}")
        return changed

    fixed = merge(fixed, nest(resolved(fixed, {}, "fixed", {})))
    shared = {key: str(lookup(dataclasses.asdict(train_config(fixed, {}, "fixed")), key) or "")
              for key in LOCAL_FILES + LOCAL_MODELS}
    variants = {name: {**overrides, **resolved(fixed, overrides, f"variants.{name}", shared)}
                for name, overrides in variants.items()}
    return fixed, variants


def _mapping(raw: Mapping[str, Any], key: str, problems: list[str]) -> dict[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, Mapping):
        problems.append(f"{key}: expected a mapping, got {type(value).__name__}")
        return {}
    return dict(value)


def _attack_passes(raw_sweep: Any, problems: list[str]) -> tuple[Any, tuple[AttackPass, ...]]:
    """(the sweep block without its attack passes, the passes, each validated; empty when none was given).

    ``sweep.attack.passes`` lists them (a mapping each, or a protocol's name alone: its BERT-Attack
    pass); without it the shorthand keys under ``sweep.attack``
    (``PASS_SHORTHAND``) make one pass, so single-protocol configs (and sweeps saved by earlier
    versions) keep working. Problems name the key as written: ``sweep.attack.passes[1].protocol``
    or ``sweep.attack.protocol``.
    """
    if not isinstance(raw_sweep, Mapping) or not isinstance(raw_sweep.get("attack"), Mapping):
        return raw_sweep, ()  # no attack block (the defaults), or not a mapping: build_dataclass reports it
    attack = dict(raw_sweep["attack"])
    listed = attack.pop("passes", None)
    shorthand = {key: attack.pop(key) for key in PASS_SHORTHAND if key in attack}
    example = "[{protocol: vda-paper}, {protocol: strict, attacks: [bert-attack, textfooler, pwws]}]"
    if listed is None:
        built = [_attack_pass(shorthand, "sweep.attack.", problems)] if shorthand else []
    elif shorthand:  # reported; the objective cannot be checked against passes that are not clear
        problems.append(f"sweep.attack: {', '.join(f'sweep.attack.{k}' for k in shorthand)} and sweep.attack.passes "
                        "are both given; set the protocol and attacks inside each pass of sweep.attack.passes")
        return {**raw_sweep, "attack": attack}, ()
    elif not isinstance(listed, (list, tuple)) or not listed:
        problems.append(f"sweep.attack.passes: {listed!r}: expected a non-empty list of passes, e.g. {example}")
        return {**raw_sweep, "attack": attack}, ()
    else:
        built = [_attack_pass({"protocol": item} if isinstance(item, str) else item, f"sweep.attack.passes[{i}].",
                              problems, needs_protocol=True) for i, item in enumerate(listed)]
        first: dict[str, int] = {}
        for i, each in enumerate(built):
            if each is not None and each.protocol in first:
                problems.append(f"sweep.attack.passes[{i}]: protocol {each.protocol!r} is already attacked by "
                                f"sweep.attack.passes[{first[each.protocol]}]; give each protocol one pass "
                                "listing all its attacks")
                built[i] = None
            elif each is not None:
                first[each.protocol] = i
    passes = tuple(p for p in built if p is not None)
    if len(passes) != len(built):  # unusable passes are reported; the objective cannot be checked against them
        return {**raw_sweep, "attack": attack}, ()
    objective = attack.get("objective")
    if objective and isinstance(objective, str):  # another type: build_dataclass reports it
        check_one_of(problems, "sweep.attack.objective", objective,
                     tuple(p.protocol for p in passes or AttackSettings().passes))
    return {**raw_sweep, "attack": attack}, passes


def _attack_pass(raw: Any, prefix: str, problems: list[str], needs_protocol: bool = False) -> AttackPass | None:
    """One validated pass from its mapping (keys named ``<prefix><key>``); None when it is unusable."""
    if not isinstance(raw, Mapping):
        problems.append(f"{prefix.rstrip('.')}: {raw!r}: expected a mapping like "
                        "{protocol: strict, attacks: [bert-attack, textfooler, pwws]}")
        return None
    count = len(problems)
    if needs_protocol and "protocol" not in raw:
        problems.append(f"{prefix}protocol: missing; name the pass's protocol ({', '.join(PROTOCOLS)})")
    attack_pass = build_dataclass(AttackPass, raw, prefix, problems)
    check_one_of(problems, f"{prefix}protocol", attack_pass.protocol, tuple(PROTOCOLS))
    try:
        attack_pass = dataclasses.replace(attack_pass, attacks=parse_attacks(attack_pass.attacks))
    except ValueError as exc:
        problems.append(f"{prefix}attacks: {exc}")
    if attack_pass.skip_broken and len(attack_pass.attacks) < 2:
        problems.append(f"{prefix}skip_broken: needs two or more {prefix}attacks, got {list(attack_pass.attacks)}")
    if attack_pass.num_examples < 0:
        problems.append(f"{prefix}num_examples: {attack_pass.num_examples!r} must be >= 0 "
                        "(0: sweep.attack.num_examples)")
    return attack_pass if len(problems) == count else None


def _variants(raw: Mapping[str, Any], problems: list[str]) -> dict[str, dict[str, Any]]:
    variants = {}
    for name, overrides in _mapping(raw, "variants", problems).items():
        if overrides is None:
            overrides = {}
        if not isinstance(overrides, Mapping):
            problems.append(f"variants.{name}: expected dotted overrides like {{vda.lam: 0.0}}, got {overrides!r}")
            continue
        variants[str(name)] = dict(overrides)
    return variants


def _search(raw: Mapping[str, Any], problems: list[str]) -> dict[str, Distribution]:
    search = {}
    for key, value in _mapping(raw, "search", problems).items():
        if key == VARIANT_KEY:
            problems.append(f"search.{key}: reserved for the variants block; list variants there instead")
            continue
        dist = Distribution.parse(str(key), value, problems)
        if dist is not None:
            search[str(key)] = dist
    return search


def _check_sweep(s: SweepConfig, search: Mapping[str, Distribution], variants: Mapping[str, Any]) -> list[str]:
    p: list[str] = []
    check_one_of(p, "sweep.searcher", s.searcher, SEARCHERS)
    check_one_of(p, "sweep.scheduler", s.scheduler, SCHEDULERS)
    check_one_of(p, "sweep.attack.checkpoints", s.attack.checkpoints, ATTACKED_CHECKPOINTS)
    # the attack passes and sweep.attack.objective are checked where they are read (_attack_passes)
    check_one_of(p, "sweep.attack.split", s.attack.split, SPLITS)
    for key, value, low in [("num_samples", s.num_samples, 1), ("max_concurrent_trials", s.max_concurrent_trials, 1),
                            ("max_failures", s.max_failures, 0), ("asha.grace_period", s.asha.grace_period, 1),
                            ("attack.num_examples", s.attack.num_examples, 1),
                            ("attack.shard_size", s.attack.shard_size, 1),
                            ("attack.workers", s.attack.workers, 1), ("trial.gpus", s.trial.gpus, 0),
                            ("attack.gpus", s.attack.gpus, 0)]:
        if value < low:
            p.append(f"sweep.{key}: {value!r} must be >= {low}")
    for key, value in [("trial.cpus", s.trial.cpus), ("attack.cpus", s.attack.cpus)]:
        if value <= 0:
            p.append(f"sweep.{key}: {value!r} must be > 0 (Ray needs a CPU to run the process)")
    if s.asha.reduction_factor <= 1:
        p.append(f"sweep.asha.reduction_factor: {s.asha.reduction_factor!r} must be > 1")
    if not s.name or "/" in s.name or s.name.startswith("."):
        p.append(f"sweep.name: {s.name!r} must be a plain directory name (no '/', not hidden)")
    try:
        s.attack.params.validate()
    except ValueError as exc:
        p.append(f"sweep.attack.params: {exc}")
    p += _check_objectives(s)
    if s.searcher == "optuna":
        grids = [k for k, d in search.items() if d.kind == "grid"]
        if grids:
            p.append(f"search: {', '.join(grids)} use 'grid', which Optuna cannot sample; use 'choice' "
                     "(or sweep.searcher: grid)")
        if not search and not variants:
            p.append("search: empty; Optuna needs at least one searched key or a variants block")
    return p


def _check_objectives(s: SweepConfig) -> list[str]:
    p: list[str] = []
    if len(s.objectives) not in (1, 2):
        p.append(f"sweep.objectives: {list(s.objectives)}: give one (single-objective) or two (a Pareto front), "
                 "e.g. [attack_acc, dev_acc]")
    for name in s.objectives:
        check_one_of(p, "sweep.objectives", name, tuple(OBJECTIVES))
    if len(set(s.objectives)) != len(s.objectives):
        p.append(f"sweep.objectives: {list(s.objectives)} repeats an objective")
    if s.needs_attack_results and not s.attack.enabled:
        p.append(f"sweep.objectives: {list(s.objectives)} need attack results but sweep.attack.enabled is false; "
                 "enable attacks or use dev_acc / dev_loss")
    return p


def _check_trials(fixed: dict[str, Any], variants: Mapping[str, Mapping[str, Any]],
                  search: Mapping[str, Distribution]) -> list[str]:
    """Validate the fixed block, then every value a trial can receive, through ``vda.config``."""
    try:
        train_config(fixed, {}, "fixed")
    except ConfigError as exc:
        return [f"fixed.{problem}" for problem in exc.problems]
    problems: list[str] = []
    for name, overrides in variants.items():
        clash = sorted(set(overrides) & set(search))
        if clash:
            problems.append(f"variants.{name}: {', '.join(clash)} also searched; set it in the variant or search "
                            "it, not both")
        problems += _trial_problems(fixed, overrides, f"variants.{name}")
    for key, dist in search.items():
        for value in dist.candidates():
            problems += _trial_problems(fixed, {key: value}, f"search.{key}={value!r}")
    return list(dict.fromkeys(problems))


def max_epochs(fixed: Mapping[str, Any], variants: Mapping[str, Mapping[str, Any]],
               search: Mapping[str, Distribution]) -> int:
    """The most epochs any trial can train (ASHA's ``max_t``: one Tune iteration per epoch)."""
    candidates = [train_config(fixed, overrides, "variant").epochs for overrides in [{}, *variants.values()]]
    if "epochs" in search:
        candidates += [int(v) for v in search["epochs"].candidates()]
    return max(candidates)


def _check_asha(s: SweepConfig, fixed: Mapping[str, Any], variants: Mapping[str, Mapping[str, Any]],
                search: Mapping[str, Distribution]) -> list[str]:
    """ASHA asserts grace_period <= max_t when the sweep starts; say so at load, with the fix."""
    if s.scheduler != "asha":
        return []
    longest = max_epochs(fixed, variants, search)
    if s.asha.grace_period <= longest:
        return []
    return [f"sweep.asha.grace_period: {s.asha.grace_period} is more than the {longest} epoch(s) any trial trains, "
            f"so ASHA could never stop a trial; use a grace_period <= {longest}, more epochs, or sweep.scheduler: none"]


def _trial_problems(fixed: dict[str, Any], overrides: Mapping[str, Any], where: str) -> list[str]:
    try:
        train_config(fixed, overrides, where)
    except ConfigError as exc:
        return [f"{where}: {problem}" for problem in exc.problems]
    return []
