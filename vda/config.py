"""Typed training configuration: the one place where YAML/dicts/CLI overrides become objects.

Every field is validated in ``TrainConfig.validate``; all problems are reported at once in a
single ``ConfigError`` whose lines name the dotted key (``vda.sigma``) and the fix. Dotted keys
are the same strings everywhere: YAML, ``key=value`` CLI overrides, sweep search spaces and the
checkpoint manifest.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from vda.dotted import assign, merge

RECIPE_DIR = Path(__file__).parent / "recipes"
"""Shipped training presets: TrainConfig fragments named by the ``recipe`` key (``authors``, ``authors_cpu``)."""

CHOICES: dict[str, dict[str, str]] = {
    "vda.mode": {  # how MLM scores become the mixture p' (see vda.substitution)
        "paper": "Eq. 4 literally: softmax(p + eps), p = softmax(MLM logits); nearly uniform (sigma ~1e-2)",
        "code": "the authors' released code end to end: p = logits / sum(logits), softmax(p + eps) (nearly "
                "uniform), weighting the classifier's own trainable embedding matrix with gradients flowing, "
                "no head dropout on the virtual pass, lambda 0.5/C by default",
        "sharp": "this project's: softmax((log p + eps) / T) over the MLM's top-K candidates; eps on "
                 "log-probabilities (sigma ~0.5-2)",
    },
    "vda.augment": {
        "mixture": "p' @ E, the expected embedding (the method)",
        "argmax": "the single most likely token of p' (paper Table 4)",
        "sample": "one token sampled from p' (paper Table 4)",
    },
    "vda.loss": {
        "symkl": "symmetric KL between clean and virtual predictions (the method, Eq. 6)",
        "ce": "CE-VDA: cross-entropy of the virtual sample against the label (paper Table 4)",
    },
    "strategy.name": {  # training strategies VDA plugs into (paper Tables 2-3); see vda.strategies
        "plain": "cross-entropy fine-tuning",
        "freelb": "FreeLB adversarial training on the embeddings (Zhu et al. 2020)",
        "smart": "SMART's smoothness-inducing adversarial regulariser (Jiang et al. 2020)",
        "smix": "SMix: mixup of [CLS] hidden states (Si et al. 2020)",
    },
    "scheduler": {
        "linear": "linear warm-up, then linear decay to 0 (the Hugging Face default)",
        "cosine": "linear warm-up, then one cosine decay to 0 (the authors' cosine-with-hard-restarts, 1 cycle)",
    },
    "selection_metric": {
        "dev_acc": "the epoch with the highest dev accuracy is 'best'",
        "dev_loss": "the epoch with the lowest dev cross-entropy is 'best'",
    },
    "device": {
        "auto": "a GPU when one is visible, else the CPU",
        "cpu": "the CPU",
        "cuda": "the GPU; an error when none is visible",
    },
    "precision": {
        "auto": "bf16 autocast on a GPU that supports it (fp16 on older GPUs), fp32 on the CPU",
        "fp32": "no autocast",
        "bf16": "bf16 autocast",
        "fp16": "fp16 autocast with loss scaling",
    },
}
"""Every enumerated key: its allowed values, each with the one-line meaning ``--help`` prints."""
SUBSTITUTION_MODES = tuple(CHOICES["vda.mode"])
AUGMENT_KINDS = tuple(CHOICES["vda.augment"])
VDA_LOSSES = tuple(CHOICES["vda.loss"])
STRATEGY_NAMES = tuple(CHOICES["strategy.name"])
SELECTION_METRICS = tuple(CHOICES["selection_metric"])
SCHEDULERS = tuple(CHOICES["scheduler"])
DEVICES = tuple(CHOICES["device"])
PRECISIONS = tuple(CHOICES["precision"])
MODE_SIGMA = {"paper": 1e-2, "code": 5e-2, "sharp": 1.0}
"""``vda.sigma`` when it is left unset. The paper's 1e-2 (5.1.4) is noise on probabilities; the
authors' code defaults to ``--variance 0.05`` (a standard deviation); in ``sharp`` mode eps is added
to log-probabilities, where 1e-2 changes nothing and ~1 is needed."""
CODE_KL_WEIGHT = 0.5
"""The authors' loss is CE + 0.5 KLDiv(q||p) + 0.5 KLDiv(p||q), each KLDiv an element-wise mean over
batch x classes: 0.5 / C times this project's batch-mean symmetric KL, so ``code`` mode's unset
lambda resolves to ``CODE_KL_WEIGHT / num_labels`` once the task is known (0.25 binary, 0.125 AG)."""
KEY_NOTES = {"vda.sigma": "unset: follows vda.mode (" + ", ".join(f"{m} {s:g}" for m, s in MODE_SIGMA.items()) + ")",
             "vda.lam": f"unset: 1 (paper, sharp), {CODE_KL_WEIGHT:g}/num_labels (code: the authors' weight)",
             "recipe": "a shipped preset (vda/recipes/<name>.yaml) or YAML path; keys given beside it override it"}
"""Extra help for keys whose default depends on another key."""


class ConfigError(ValueError):
    """A configuration is invalid; the message lists every problem with its dotted key."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s):\n{lines}")


@dataclass(frozen=True)
class DataConfig:
    """Which task to train on and how to read it (see ``vda.data``)."""

    dataset: str = "mr"  # built-in name ("mr"), "hf:<path>[/<config>]", a CSV/TSV/JSONL file or a directory of them
    text_columns: tuple[str, ...] = ("text",)  # one column: single-sentence task; two: sentence pair
    label_column: str = "label"
    label_names: tuple[str, ...] = ()  # empty: inferred (sorted) from the training split
    max_length: int = 128  # tokens; longer inputs are truncated with a counted warning
    max_train_examples: int = 0  # 0 = all; otherwise a seeded subsample (smoke runs, tests)
    max_eval_examples: int = 0  # 0 = all; caps dev and test alike
    split_seed: int = 13  # seed of the train/dev/test split when a source has no fixed split
    extra_train_file: str = ""  # JSONL of extra training examples (e.g. ADA's adversarial texts), appended to train


@dataclass(frozen=True)
class VDAConfig:
    """The VDA regulariser (paper section 4). ``lam == 0`` is plain fine-tuning."""

    mode: str = "sharp"  # one of SUBSTITUTION_MODES; recorded in every manifest
    sigma: float | None = None  # std of eps ~ N(0, sigma^2); None: MODE_SIGMA[mode] (paper/code modes: the
    # paper's 1e-2, tuned in {1e-3, 4e-3, 1e-2, 4e-2}; sharp: 1.0, its eps is on log-probabilities)
    lam: float | None = None  # lambda, weight of the batch-mean regulariser (paper: 1.0, tuned in {0.04, 0.1, 0.4,
    # 1.0, 4.0}); None: 1.0, or in code mode the authors' 0.5/C, resolved by ``for_task`` (CODE_KL_WEIGHT)
    k: int = 1  # virtual samples per example (paper 5.1.4: 1; Fig. 3: best near 3)
    noise: bool = True  # False = "VDA - eps" ablation (Table 4)
    loss: str = "symkl"  # one of VDA_LOSSES
    augment: str = "mixture"  # one of AUGMENT_KINDS
    top_k: int = 32  # sharp mode: candidates per position (the original token is always added)
    temperature: float = 1.0  # sharp mode: softmax temperature over candidate log-probabilities
    chunk_positions: int = 2048  # full-vocabulary modes: positions per [n, V] block (bounds memory)
    cache_mb: int = 1024  # sharp mode: the most a run's candidate table (every training example's top-K, computed
    # before the first step so the MLM never runs while training; vda.candidates) may take; a larger table is not
    # built and the MLM scores every batch (warned); 0 = no table, score every batch
    detach_embedding: bool = False  # code mode: mix a detached copy of the classifier's matrix, so no gradient
    # reaches its rows through the mixture (no shared drift of unseen rows; the "detached" mechanism arm)
    shared_candidates: bool = True  # sharp mode: keep the table in the cache directory (keyed by MLM, tokens, top_k,
    # numerics), so every run and sweep trial with the same key computes it once and memory-maps it; False = only in
    # this run's memory. Both hold the same values, so the choice never changes training

    def __post_init__(self) -> None:
        # Resolved here, not where the noise is drawn, so the manifest records the sigma that was used.
        if self.sigma is None:
            object.__setattr__(self, "sigma", MODE_SIGMA.get(self.mode))
        if self.lam is None and self.mode != "code":  # code mode's weight needs the class count: for_task
            object.__setattr__(self, "lam", 1.0)

    @property
    def enabled(self) -> bool:
        return self.lam is None or self.lam > 0

    @property
    def mixes_classifier_embedding(self) -> bool:
        """Whether the mixture weights the classifier's own matrix (the authors' path) instead of the MLM's."""
        return self.mode == "code"

    def for_task(self, num_labels: int) -> "VDAConfig":
        """This config with an unset lambda resolved for a task of ``num_labels`` classes (code mode)."""
        if self.lam is not None:
            return self
        return dataclasses.replace(self, lam=CODE_KL_WEIGHT / num_labels)


@dataclass(frozen=True)
class StrategyConfig:
    """The base training strategy; VDA (``vda.lam > 0``) adds its regulariser on top of any of them."""

    name: str = "plain"  # one of STRATEGY_NAMES
    # FreeLB (Zhu et al. 2020), defaults of the reference implementation
    adv_steps: int = 3  # ascent steps K; each step's loss is divided by K
    adv_lr: float = 5e-2  # size of each per-example L2-normalised ascent step
    adv_init_mag: float = 1e-1  # uniform init, normalised by sqrt(length * hidden)
    adv_max_norm: float = 0.0  # L2 projection radius per example; 0 = unbounded
    # SMART (Jiang et al. 2020), smoothness-inducing adversarial regulariser only (paper 5.1.2)
    smart_noise_var: float = 1e-5  # variance of the initial Gaussian perturbation
    smart_step: float = 1e-3  # one ascent step under an L-inf normalisation
    smart_weight: float = 1.0  # weight of the symmetric-KL smoothness term
    # SMix (Si et al. 2020), mixup of [CLS] hidden states without its adversarial augmentation
    mix_alpha: float = 0.2  # mixing ratio ~ Beta(alpha, alpha)
    mix_layer: int = -1  # encoder layer whose [CLS] output is mixed; -1 = the last layer
    # Regularisers of the clean cross-entropy, under any strategy (the mechanism study's controls for VDA)
    label_smoothing: float = 0.0  # torch's CrossEntropyLoss(label_smoothing=...); Yang et al. 2023 used 0.1
    confidence_penalty: float = 0.0  # w in CE + w * sKL(f(x), uniform): VDA's pull towards the class prior
    # without a virtual pass (0.25 matches code mode's weight on a binary task)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one fine-tuning run; written verbatim into the checkpoint manifest."""

    recipe: str = ""  # the preset the other values started from (vda/recipes/<name>.yaml); "" = none
    model: str = "default"  # "default" = packaged all-MiniLM-L6-v2; else a local path or hub name
    mlm: str = "default"  # "default" = packaged encoder + this repo's MLM head; else path/hub name
    data: DataConfig = field(default_factory=DataConfig)
    vda: VDAConfig = field(default_factory=VDAConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    lr: float = 1e-4  # for the default MiniLM backbone, which learns far too little at the paper's 1e-5 (5.1.4,
    # BERT-base over 10 epochs); use 1e-5 to 2e-5 for BERT-base-sized models
    warmup_ratio: float = 0.05  # paper 5.1.4: 5% of steps
    weight_decay: float = 0.01
    decay_all_parameters: bool = False  # also decay biases and LayerNorm weights (the authors' AdamW does)
    scheduler: str = "linear"  # one of SCHEDULERS
    shuffle: bool = True  # reshuffle the training split every epoch (the authors' loader does not)
    batch_size: int = 32
    eval_batch_size: int = 64
    epochs: int = 3
    max_steps: int = 0  # 0 = epochs * steps_per_epoch; otherwise stop after this many optimizer steps
    max_grad_norm: float = 1.0  # 0 disables clipping
    seed: int = 42
    selection_metric: str = "dev_acc"  # picks the "best" checkpoint and drives early stopping
    early_stopping_patience: int = 0  # epochs without improvement before stopping; 0 = never stop early
    eval_test: bool = True  # evaluate the best checkpoint on the test split at the end
    device: str = "auto"
    precision: str = "auto"  # auto = bf16 autocast on a GPU that supports it, fp32 otherwise
    keep_epoch_checkpoints: bool = False  # also keep epoch-N/ directories (Figure 4 curves)
    num_threads: int = 0  # torch CPU threads; 0 = leave torch's default

    def validate(self, source: str = "config") -> "TrainConfig":
        """Raise one ConfigError listing every invalid value; return self when all is well."""
        problems = [*_check_train(self), *_check_data(self.data), *_check_vda(self.vda),
                    *_check_strategy(self.strategy)]
        if problems:
            raise ConfigError(problems, source)
        return self

    def to_dict(self) -> dict[str, Any]:
        return to_plain(dataclasses.asdict(self))


def _check_train(c: TrainConfig) -> list[str]:
    p: list[str] = []
    _positive(p, "lr", c.lr)
    _in_range(p, "warmup_ratio", c.warmup_ratio, 0.0, 1.0)
    _at_least(p, "weight_decay", c.weight_decay, 0.0)
    _at_least(p, "batch_size", c.batch_size, 1)
    _at_least(p, "eval_batch_size", c.eval_batch_size, 1)
    _at_least(p, "epochs", c.epochs, 1)
    _at_least(p, "max_steps", c.max_steps, 0)
    _at_least(p, "max_grad_norm", c.max_grad_norm, 0.0)
    _at_least(p, "early_stopping_patience", c.early_stopping_patience, 0)
    _at_least(p, "num_threads", c.num_threads, 0)
    check_one_of(p, "selection_metric", c.selection_metric, SELECTION_METRICS)
    check_one_of(p, "scheduler", c.scheduler, SCHEDULERS)
    check_one_of(p, "device", c.device, DEVICES)
    check_one_of(p, "precision", c.precision, PRECISIONS)
    for key in ("model", "mlm"):
        if not getattr(c, key).strip():
            p.append(f"{key}: empty; use 'default', a local directory or a hub model name")
    return p


def _check_data(d: DataConfig) -> list[str]:
    p: list[str] = []
    if not d.dataset.strip():
        p.append("data.dataset: empty; use 'mr', 'hf:glue/mrpc' or a path to a CSV/TSV/JSONL file")
    if len(d.text_columns) not in (1, 2):
        p.append(f"data.text_columns: {list(d.text_columns)} has {len(d.text_columns)} columns; "
                 "give one (single sentence) or two (sentence pair)")
    if len(set(d.text_columns)) != len(d.text_columns):
        p.append(f"data.text_columns: {list(d.text_columns)} repeats a column")
    if d.label_names and len(set(d.label_names)) != len(d.label_names):
        p.append(f"data.label_names: {list(d.label_names)} repeats a label")
    if d.label_names and len(d.label_names) < 2:
        p.append("data.label_names: a classification task needs at least 2 labels")
    _in_range(p, "data.max_length", d.max_length, 8, 8192)
    _at_least(p, "data.max_train_examples", d.max_train_examples, 0)
    _at_least(p, "data.max_eval_examples", d.max_eval_examples, 0)
    return p


def _check_vda(v: VDAConfig) -> list[str]:
    p: list[str] = []
    check_one_of(p, "vda.mode", v.mode, SUBSTITUTION_MODES)
    check_one_of(p, "vda.loss", v.loss, VDA_LOSSES)
    check_one_of(p, "vda.augment", v.augment, AUGMENT_KINDS)
    if v.sigma is not None:  # None only when vda.mode is unknown, which is reported above
        _at_least(p, "vda.sigma", v.sigma, 0.0,
                  hint="sigma is a standard deviation; use 0 or vda.noise=false for no noise")
    if v.lam is not None:  # None: the mode's default, resolved for the task (VDAConfig.for_task)
        _at_least(p, "vda.lam", v.lam, 0.0, hint="use 0 for plain fine-tuning")
    if v.detach_embedding and v.mode != "code":
        p.append(f"vda.detach_embedding: only the code mode mixes the classifier's own matrix (vda.mode is "
                 f"{v.mode!r}); set vda.mode=code or leave vda.detach_embedding false")
    _in_range(p, "vda.k", v.k, 1, 64, hint="k is the number of virtual samples per example (paper: 1-5)")
    _in_range(p, "vda.top_k", v.top_k, 1, 100_000)
    _positive(p, "vda.temperature", v.temperature)
    _at_least(p, "vda.chunk_positions", v.chunk_positions, 1)
    _at_least(p, "vda.cache_mb", v.cache_mb, 0, hint="0 turns the candidate table off")
    if not isinstance(v.shared_candidates, bool):
        p.append(f"vda.shared_candidates: {v.shared_candidates!r} must be true or false")
    return p


def _check_strategy(s: StrategyConfig) -> list[str]:
    p: list[str] = []
    check_one_of(p, "strategy.name", s.name, STRATEGY_NAMES)
    _in_range(p, "strategy.adv_steps", s.adv_steps, 1, 100)
    _at_least(p, "strategy.adv_lr", s.adv_lr, 0.0)
    _at_least(p, "strategy.adv_init_mag", s.adv_init_mag, 0.0)
    _at_least(p, "strategy.adv_max_norm", s.adv_max_norm, 0.0, hint="0 means unbounded")
    _at_least(p, "strategy.smart_noise_var", s.smart_noise_var, 0.0)
    _at_least(p, "strategy.smart_step", s.smart_step, 0.0)
    _at_least(p, "strategy.smart_weight", s.smart_weight, 0.0)
    _positive(p, "strategy.mix_alpha", s.mix_alpha)
    _in_range(p, "strategy.mix_layer", s.mix_layer, -1, 128, hint="-1 is the last encoder layer")
    _in_range(p, "strategy.label_smoothing", s.label_smoothing, 0.0, 0.999, hint="0 is plain cross-entropy")
    _at_least(p, "strategy.confidence_penalty", s.confidence_penalty, 0.0, hint="0 turns it off")
    return p


def _is_number(value: Any) -> bool:
    """A real, finite number: inf or nan would pass range checks and only fail at the first training step."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _at_least(p: list[str], key: str, value: Any, low: float, hint: str = "") -> None:
    if not _is_number(value) or value < low:
        p.append(f"{key}: {value!r} must be a number >= {low}" + (f" ({hint})" if hint else ""))


def _positive(p: list[str], key: str, value: Any) -> None:
    if not _is_number(value) or value <= 0:
        p.append(f"{key}: {value!r} must be a number > 0")


def _in_range(p: list[str], key: str, value: Any, low: float, high: float, hint: str = "") -> None:
    if not _is_number(value) or not low <= value <= high:
        p.append(f"{key}: {value!r} must be in [{low}, {high}]" + (f" ({hint})" if hint else ""))


def check_one_of(p: list[str], key: str, value: Any, allowed: tuple[str, ...]) -> None:
    """Append a problem naming ``key``, the close match and every allowed value (shared with tune.config)."""
    if value not in allowed:
        close = difflib.get_close_matches(str(value), allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        p.append(f"{key}: {value!r} is unknown; {hint}known: {', '.join(allowed)}")


def format_choices(choices: Mapping[str, Mapping[str, str]]) -> list[str]:
    """``--help`` lines: each enumerated key, then each allowed value and its meaning."""
    lines = []
    for key, values in choices.items():
        lines.append(f"  {key}:")
        width = max(len(v) for v in values)
        lines += [f"    {value:<{width}}  {meaning}" for value, meaning in values.items()]
    return lines


def to_plain(obj: Any) -> Any:
    """Tuples to lists, recursively: what YAML/JSON/Ray configs hold."""
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


# ---------------------------------------------------------------- building from dicts / YAML


def config_from_dict(raw: Mapping[str, Any], source: str = "config") -> TrainConfig:
    """Build and validate a TrainConfig from a nested dict; unknown keys and wrong types are errors."""
    problems: list[str] = []
    raw = expand_recipe(raw, problems)
    cfg = build_dataclass(TrainConfig, raw, "", problems)
    try:  # values that could not be built keep their defaults: the rest is still checked, all reported at once
        cfg.validate(source)
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        raise ConfigError(problems, source)
    return cfg


def recipe_path(name: str) -> Path:
    """The YAML of recipe ``name``: a shipped preset by name, else a path."""
    shipped = RECIPE_DIR / f"{name}.yaml"
    return shipped if shipped.is_file() else Path(name)


def expand_recipe(raw: Any, problems: list[str]) -> Any:
    """``raw`` on top of the recipe it names: the recipe's values are the base, ``raw``'s keys win.

    Why a key and not a second ``--config``: a sweep's ``fixed`` block and its variants reach
    ``config_from_dict`` as one mapping, so a preset named there works the same in both places,
    and the resolved values (not the name alone) land in every manifest.
    """
    if not isinstance(raw, Mapping) or not raw.get("recipe"):
        return raw
    name = raw["recipe"]
    path = recipe_path(str(name))
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        shipped = ", ".join(sorted(p.stem for p in RECIPE_DIR.glob("*.yaml")))
        problems.append(f"recipe: {name!r} cannot be read ({exc.__class__.__name__}); use a shipped recipe "
                        f"({shipped}) or a YAML file path")
        return {k: v for k, v in raw.items() if k != "recipe"}
    if not isinstance(loaded, Mapping) or loaded.get("recipe"):
        problems.append(f"recipe: {path} must be a mapping of config keys and name no recipe of its own")
        return {k: v for k, v in raw.items() if k != "recipe"}
    return merge(loaded, raw)


def build_dataclass(cls: type, raw: Any, prefix: str, problems: list[str]) -> Any:
    if not isinstance(raw, Mapping):
        problems.append(f"{prefix.rstrip('.') or '<root>'}: expected a mapping of keys, got {type(raw).__name__}")
        return cls()
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f"did you mean {prefix}{close[0]!r}? " if close else ""
            problems.append(f"{dotted}: unknown key; {hint}known: {', '.join(sorted(fields))}")
            continue
        default = getattr(cls(), key)
        if value is None and fields[key].default is None:  # explicitly unset: the field resolves it
            kwargs[key] = None
        elif dataclasses.is_dataclass(default):
            kwargs[key] = build_dataclass(type(default), value, f"{dotted}.", problems)
        else:
            coerced = _coerce(value, default, dotted, problems)
            if coerced is not _INVALID:
                kwargs[key] = coerced
    return cls(**kwargs)


_INVALID = object()


def _coerce(value: Any, default: Any, key: str, problems: list[str]) -> Any:
    """Accept YAML/CLI scalars for a field whose type is given by its default value."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif isinstance(default, float):
        number = _float(value)
        if number is not None and math.isfinite(number):
            return number
        if number is not None:
            problems.append(f"{key}: {value!r} is not a finite number; use a real value like {default!r}")
            return _INVALID
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, tuple):
        if isinstance(value, str):
            return tuple(s.strip() for s in value.split(",") if s.strip())
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
    problems.append(f"{key}: {value!r} has the wrong type; expected {type(default).__name__} like {default!r}")
    return _INVALID


def _float(value: Any) -> float | None:
    """``value`` as a float if it is a number or a numeric string (YAML reads ``1e-5`` as a string), else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


OVERRIDES_SOURCE = "command line overrides"


def apply_overrides(raw: Mapping[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides (values parsed as YAML scalars) to a nested dict, returning a copy."""
    out = dict(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError([f"override {item!r}: expected key=value, e.g. vda.sigma=0.05"], OVERRIDES_SOURCE)
        key, text = item.split("=", 1)
        try:
            out = assign(out, key.strip(), yaml.safe_load(text) if text.strip() else "")
        except ValueError as exc:
            raise ConfigError([f"override {item!r}: {exc}; override the section's keys instead"],
                              OVERRIDES_SOURCE) from None
    return out


def describe_source(path: str | Path | None, overrides: list[str] | None) -> str:
    """Where a configuration came from, for the heading of its ConfigError."""
    if path is None:
        return OVERRIDES_SOURCE if overrides else "defaults"
    return f"{path} with {OVERRIDES_SOURCE}" if overrides else str(path)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML file (optional), apply ``key=value`` overrides, validate, return the config."""
    raw: dict[str, Any] = {}
    source = describe_source(path, overrides)
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(["file not found; pass an existing YAML file to --config"], str(path)) from None
        except yaml.YAMLError as exc:
            raise ConfigError([f"not valid YAML: {exc}"], str(path)) from None
        if loaded is not None and not isinstance(loaded, Mapping):
            raise ConfigError([f"expected a mapping of config keys, got {type(loaded).__name__}"], str(path))
        raw = loaded or {}
    return config_from_dict(apply_overrides(raw, overrides or []), source)
