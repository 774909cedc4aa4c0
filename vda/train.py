"""Fine-tune a Hugging Face sequence classifier with VDA: ``fit(cfg, run_dir)`` and its CLI.

    python -m vda.train                                   # default: MiniLM on built-in MR, sharp VDA
    python -m vda.train --config my.yaml vda.sigma=0.05 vda.k=3 --output-dir runs/x
    python -m vda.train --help                            # every config key with its default

``fit`` never imports Ray: the sweep drives it through ``on_epoch_end``, which receives each
epoch's metrics and the path of that epoch's checkpoint (``<run_dir>/last``, which also carries
the optimizer, scheduler and RNG states needed to resume exactly). ``<run_dir>/best`` holds the
best epoch by ``selection_metric``; ``<run_dir>/results.json`` the history and test metrics.

With ``eval_test`` the test split is evaluated whenever an epoch becomes the best, so the test
metrics always belong to the best weights (also after a resume into a fresh ``run_dir``) and are
kept in that checkpoint's manifest ``metrics`` (``test_acc``, ``test_loss``).

In sharp mode the MLM's candidates for the whole training split are computed, or loaded from the
shared cache, before the first step (``vda.candidates``); ``prepare_candidates`` does only that, so
a sweep can make the table once before its trials start. ``results.json`` records which table a run
used and whether it was loaded or computed (``candidates``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from vda.augment import VirtualAugmenter
from vda.batching import EncodedSplit, batch_indices, collate, encode_examples
from vda.candidates import Numerics, TableReport, candidate_table, uses_shared_file
from vda.checkpoint import CheckpointError, Manifest, git_commit, package_versions, save_checkpoint
from vda.config import CHOICES, KEY_NOTES, ConfigError, TrainConfig, format_choices, load_config
from vda.data import SPLITS, DataError, TaskData, load_task
from vda.dotted import flatten
from vda.mlm import VocabularyMismatchError, check_same_vocab, load_mlm, resolve_model_path
from vda.objective import StepContext, VDATerm, model_inputs
from vda.strategies import get_strategy

log = logging.getLogger("vda.train")
TRAINER_STATE = "trainer_state.json"
OPTIMIZER_STATE = "optimizer.pt"


@dataclass
class EpochReport:
    epoch: int
    step: int
    metrics: dict[str, float]  # the epoch's checkpoint metrics: test_acc/test_loss too on an improving epoch
    checkpoint_dir: Path  # <run_dir>/last: model, manifest and the trainer state to resume from
    is_best: bool
    best_test: dict[str, float] = field(default_factory=dict)  # test metrics of the best epoch so far


@dataclass
class FitResult:
    run_dir: Path
    best_dir: Path
    best_metrics: dict[str, float]
    test_metrics: dict[str, float]  # the best epoch's, measured when it was the best (cfg.eval_test)
    history: list[dict[str, float]] = field(default_factory=list)
    candidates: TableReport | None = None  # sharp mode's candidate table: its key, loaded or computed


@dataclass
class _State:
    """What must survive a restart besides weights, optimizer and RNGs: written as JSON, never pickled."""

    epoch: int = 0
    step: int = 0
    best: float | None = None
    epochs_since_best: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    # Measured on the best epoch when it is reached, not at the end: a resumed run (a restored Tune trial
    # starts in a fresh run_dir) may no longer have the best weights.
    best_test: dict[str, float] = field(default_factory=dict)


@dataclass
class _Run:
    """What one training run is made of: built once by ``_build_run``, used by the loop and checkpoint writes."""

    cfg: TrainConfig
    run_dir: Path
    run_id: str
    device: torch.device
    amp: torch.dtype | None
    task: TaskData
    tokenizer: Any
    model: Any
    encoded: dict[str, EncodedSplit]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    # VDA noise and SMART's perturbation; torch's global RNG drives dropout, FreeLB's init and SMix.
    noise: torch.Generator
    step_fn: Callable[[Any, dict[str, torch.Tensor], StepContext], dict[str, float]]
    ctx: StepContext
    steps_per_epoch: int
    total_steps: int
    candidates: TableReport | None


def pick_device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(["device: 'cuda' requested but no GPU is visible; use device=auto or cpu"])
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on GPUs that support it (auto), fp16/bf16 when asked; fp32 on CPU by default."""
    if cfg.precision == "fp32" or (cfg.precision == "auto" and device.type != "cuda"):
        return None
    if cfg.precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cfg.precision == "bf16" else torch.float16


def evaluate(model: Any, tokenizer: Any, split: EncodedSplit, batch_size: int, device: torch.device,
             amp: torch.dtype | None = None) -> dict[str, float]:
    """Accuracy and mean cross-entropy over one encoded split."""
    model.eval()
    correct, loss_sum = 0, 0.0
    lengths = [len(f["input_ids"]) for f in split.features]
    with torch.no_grad(), Numerics(device, amp).autocast():
        for rows in batch_indices(len(split), batch_size, shuffle=False, lengths=lengths):
            batch = collate(tokenizer, split, rows, device)
            logits = model(input_ids=batch["input_ids"], **model_inputs(batch)).logits.float()
            loss_sum += float(F.cross_entropy(logits, batch["labels"], reduction="sum"))
            correct += int((logits.argmax(-1) == batch["labels"]).sum())
    n = max(1, len(split))
    return {"acc": correct / n, "loss": loss_sum / n}


def _warmup_schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int,
                     shape: str) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup`` steps, then a linear or cosine decay to 0 at ``total`` (``cfg.scheduler``).

    The cosine is transformers' ``get_cosine_with_hard_restarts_schedule_with_warmup`` with its
    default single cycle, which is what the authors' code calls: one half-cosine from 1 to 0.
    """
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress)) if shape == "cosine" else 1.0 - progress

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _optimizer(model: Any, cfg: TrainConfig) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            exempt = p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name
            (no_decay if exempt and not cfg.decay_all_parameters else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, eps=1e-8, fused=True)  # fused: 6x faster than the default on CPU


def _improved(value: float, best: float | None, metric: str) -> bool:
    if best is None:
        return True
    return value < best if metric.endswith("loss") else value > best


def fit(cfg: TrainConfig, run_dir: str | Path, on_epoch_end: Callable[[EpochReport], None] | None = None,
        resume_from: str | Path | None = None, run_id: str | None = None, progress: bool = True) -> FitResult:
    """Train per ``cfg``; write checkpoints under ``run_dir``; resume from a ``last`` checkpoint if given.

    A resumed run restores weights, optimizer, schedule and every random generator, so it trains
    exactly as the uninterrupted run would have, into the same or a fresh ``run_dir``.
    """
    cfg.validate()
    run = _build_run(cfg, Path(run_dir).resolve(), run_id or uuid.uuid4().hex[:12], resume_from, progress)
    state = _restore(Path(resume_from), run) if resume_from else _State()
    while state.epoch < cfg.epochs and state.step < run.total_steps:
        report = _end_epoch(run, state, _train_epoch(run, state, progress))
        if on_epoch_end is not None:
            on_epoch_end(report)
        if _stops_early(cfg, state):
            break
    return _finish(run, state)


def _build_run(cfg: TrainConfig, run_dir: Path, run_id: str, resume_from: str | Path | None,
               progress: bool) -> _Run:
    """Seed, then load data, classifier (from the checkpoint when resuming), MLM and its candidate table,
    optimizer and step context."""
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    numerics = _numerics(cfg)
    device, amp = numerics.device, numerics.amp
    task = load_task(cfg.data)
    cfg = dataclasses.replace(cfg, vda=cfg.vda.for_task(task.num_labels))  # the manifest records the lambda used
    source = str(Path(resume_from) / "model") if resume_from else resolve_model_path(cfg.model)
    tokenizer, model = _load_classifier(source, task, device)
    encoded = _encode(cfg, task, tokenizer, SPLITS)
    augmenter, candidates = _load_augmenter(cfg, tokenizer, numerics, encoded["train"], progress)
    steps_per_epoch = math.ceil(len(encoded["train"]) / cfg.batch_size)
    total_steps = cfg.max_steps or cfg.epochs * steps_per_epoch
    optimizer = _optimizer(model, cfg)
    scheduler = _warmup_schedule(optimizer, int(cfg.warmup_ratio * total_steps), total_steps, cfg.scheduler)
    scaler = torch.amp.GradScaler(device.type, enabled=amp is torch.float16)
    noise = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    ctx = StepContext(params=cfg.strategy, vda=VDATerm(augmenter, cfg.vda, noise) if augmenter else None,
                      backward=lambda loss: scaler.scale(loss).backward(), generator=noise,
                      autocast=numerics.autocast)  # the autocast the candidate table was scored under
    return _Run(cfg, run_dir, run_id, device, amp, task, tokenizer, model, encoded, optimizer, scheduler, scaler,
                noise, get_strategy(cfg.strategy.name), ctx, steps_per_epoch, total_steps, candidates)


def prepare_candidates(cfg: TrainConfig, progress: bool = True) -> Path | None:
    """Make (or check) the shared candidate table a run of ``cfg`` will load, without training.

    The table's directory, or None when ``cfg`` uses no shared table (not sharp-mode VDA,
    ``vda.cache_mb`` 0 or too small, ``vda.shared_candidates`` false). Reads the data, tokenizer
    and MLM exactly as ``fit`` does, so the key is the one ``fit`` computes.
    """
    cfg.validate()
    if not uses_shared_file(cfg.vda):
        return None
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    task = load_task(cfg.data)
    tokenizer = _load_tokenizer(resolve_model_path(cfg.model))
    train = _encode(cfg, task, tokenizer, ("train",))["train"]
    _, report = _load_augmenter(cfg, tokenizer, _numerics(cfg), train, progress)
    return Path(report.path) if report is not None and report.path else None


def _numerics(cfg: TrainConfig) -> Numerics:
    device = pick_device(cfg)
    return Numerics(device, autocast_dtype(cfg, device))


def _encode(cfg: TrainConfig, task: TaskData, tokenizer: Any, splits: tuple[str, ...]) -> dict[str, EncodedSplit]:
    """Tokenise ``splits`` once; the train split's token ids are part of the candidate table's key."""
    return {s: encode_examples(tokenizer, task.splits[s], cfg.data.max_length, f"{task.name}/{s}") for s in splits}


def _load_tokenizer(source: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(source)


def _load_classifier(source: str, task: TaskData, device: torch.device) -> tuple[Any, Any]:
    """(tokenizer, sequence classifier with the task's labels) from a model path or a checkpoint's model/."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=task.num_labels, id2label=dict(enumerate(task.label_names)),
        label2id={n: i for i, n in enumerate(task.label_names)}).to(device)
    return _load_tokenizer(source), model


def _load_augmenter(cfg: TrainConfig, tokenizer: Any, numerics: Numerics, train: EncodedSplit,
                    progress: bool) -> tuple[VirtualAugmenter | None, TableReport | None]:
    """The frozen MLM that proposes virtual tokens, checked to share the classifier's vocabulary, with its
    candidate table over ``train`` (sharp mode) and how it was got; (None, None) without VDA."""
    if not cfg.vda.enabled:
        return None, None
    mlm, mlm_tokenizer = load_mlm(cfg.mlm, numerics.device)
    check_same_vocab(tokenizer, mlm_tokenizer, mlm)
    augmenter = VirtualAugmenter(mlm, cfg.vda)
    augmenter.table, report = candidate_table(augmenter, train, tokenizer, numerics, progress)
    return augmenter, report


def _train_epoch(run: _Run, state: _State, progress: bool) -> dict[str, float]:
    """One pass over the training split, shuffled unless ``cfg.shuffle`` is off (stopping at ``total_steps``).

    Returns the mean training loss and the seconds the loop took (``train_seconds``, without
    evaluation and checkpoint writes: what a step-time benchmark over real epochs reads).
    """
    cfg = run.cfg
    started = time.perf_counter()
    run.model.train()
    # The order is a function of (seed, epoch) alone, so a resumed run shuffles as the uninterrupted one.
    batches = batch_indices(len(run.encoded["train"]), cfg.batch_size, cfg.shuffle, cfg.seed + state.epoch)
    bar = tqdm(batches, total=run.steps_per_epoch, desc=f"epoch {state.epoch + 1}/{cfg.epochs}",
               disable=not progress, leave=False)
    loss_sum, seen = 0.0, 0
    for rows in bar:
        parts = _train_step(run, rows, state.step)
        state.step += 1
        loss_sum, seen = loss_sum + parts["loss"], seen + 1
        bar.set_postfix({k: f"{v:.3f}" for k, v in parts.items()})
        if state.step >= run.total_steps:
            break
    state.epoch += 1
    return {"train_loss": loss_sum / max(1, seen), "train_seconds": time.perf_counter() - started}


def _train_step(run: _Run, rows: list[int], step: int) -> dict[str, float]:
    """One optimizer step on the training examples ``rows``; the strategy's loss parts."""
    batch = collate(run.tokenizer, run.encoded["train"], rows, run.device)
    run.optimizer.zero_grad(set_to_none=True)
    parts = run.step_fn(run.model, batch, run.ctx)
    if not math.isfinite(parts["loss"]):
        raise FloatingPointError(f"loss is {parts['loss']} at step {step}; lower lr or vda.lam, "
                                 "or use precision=fp32")
    if run.cfg.max_grad_norm:
        run.scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.max_grad_norm)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    return parts


def _end_epoch(run: _Run, state: _State, train: dict[str, float]) -> EpochReport:
    """Evaluate on dev (and on test when the epoch is the new best), update the state, write the checkpoints."""
    cfg = run.cfg
    dev = _evaluate_split(run, "dev")
    metrics = {"epoch": state.epoch, "step": state.step, **train,
               "dev_acc": dev["acc"], "dev_loss": dev["loss"]}
    is_best = _improved(metrics[cfg.selection_metric], state.best, cfg.selection_metric)
    if is_best:
        state.best, state.epochs_since_best = metrics[cfg.selection_metric], 0
        if cfg.eval_test:
            state.best_test = {f"test_{k}": v for k, v in _evaluate_split(run, "test").items()}
    else:
        state.epochs_since_best += 1
    state.history.append(metrics)
    log.info("epoch %d: %s", state.epoch, json.dumps({k: round(v, 4) for k, v in metrics.items()}))
    # A checkpoint's manifest carries the test metrics of its own weights only: those of an improving epoch.
    checkpoint_metrics = {**metrics, **state.best_test} if is_best else dict(metrics)
    last = _save_epoch(run, state, checkpoint_metrics, is_best)
    return EpochReport(state.epoch, state.step, checkpoint_metrics, last, is_best, dict(state.best_test))


def _evaluate_split(run: _Run, split: str) -> dict[str, float]:
    return evaluate(run.model, run.tokenizer, run.encoded[split], run.cfg.eval_batch_size, run.device, run.amp)


def _save_epoch(run: _Run, state: _State, metrics: dict[str, float], is_best: bool) -> Path:
    """Write ``last`` (with the trainer state to resume from), ``best`` when improved, ``epoch-N`` if kept."""
    manifest = _manifest(run, state, metrics)
    last = save_checkpoint(run.run_dir / "last", run.model, run.tokenizer, manifest,
                           lambda directory: _write_state(directory, state, run))
    if is_best:
        save_checkpoint(run.run_dir / "best", run.model, run.tokenizer, manifest)
    if run.cfg.keep_epoch_checkpoints:
        save_checkpoint(run.run_dir / f"epoch-{state.epoch}", run.model, run.tokenizer, manifest)
    return last


def _stops_early(cfg: TrainConfig, state: _State) -> bool:
    if cfg.early_stopping_patience and state.epochs_since_best >= cfg.early_stopping_patience:
        log.info("early stop: %s did not improve for %d epochs", cfg.selection_metric, state.epochs_since_best)
        return True
    return False


def _finish(run: _Run, state: _State) -> FitResult:
    """The best epoch's metrics and its test metrics, also written to ``<run_dir>/results.json``."""
    metric = run.cfg.selection_metric
    sign = -1 if metric.endswith("loss") else 1
    best_metrics = max(state.history, key=lambda m: sign * m[metric]) if state.history else {}
    candidates = dataclasses.asdict(run.candidates) if run.candidates else None
    (run.run_dir / "results.json").write_text(json.dumps(
        {"run_id": run.run_id, "config": run.cfg.to_dict(), "best": best_metrics, "test": state.best_test,
         "history": state.history, "candidates": candidates}, indent=2))
    return FitResult(run.run_dir, run.run_dir / "best", best_metrics, dict(state.best_test), state.history,
                     run.candidates)


def _manifest(run: _Run, state: _State, metrics: dict[str, float]) -> Manifest:
    return Manifest(run_id=run.run_id, config=run.cfg.to_dict(), dataset=run.task.describe(), epoch=state.epoch,
                    step=state.step, metrics=dict(metrics), substitution_mode=run.cfg.vda.mode,
                    versions=package_versions(), git_commit=git_commit())


def _write_state(directory: Path, state: _State, run: _Run) -> None:
    """The trainer state (JSON) and what resuming needs besides weights: optimizer, schedule, scaler, RNGs."""
    (directory / TRAINER_STATE).write_text(json.dumps(dataclasses.asdict(state)))
    torch.save({"optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
                "scaler": run.scaler.state_dict(), "rng": _rng_state(run)}, directory / OPTIMIZER_STATE)


def _rng_state(run: _Run) -> dict[str, Any]:
    """Every generator training draws from. Shuffling needs none: each epoch's order is seeded by (seed, epoch)."""
    state = {"device": run.device.type, "torch": torch.get_rng_state(), "noise": run.noise.get_state()}
    if run.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(run.device)
    return state


def _restore(directory: Path, run: _Run) -> _State:
    """Load the trainer state of a ``last`` checkpoint into ``run``; the state to continue from."""
    try:
        state = _State(**json.loads((directory / TRAINER_STATE).read_text()))
        # weights_only=True: the restricted unpickler accepts tensors and plain containers only.
        saved = torch.load(directory / OPTIMIZER_STATE, map_location="cpu", weights_only=True)
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        raise ValueError(f"{directory}: cannot resume ({exc}); pass a '<run_dir>/last' checkpoint written by "
                         "vda.train, or start fresh") from None
    run.optimizer.load_state_dict(saved["optimizer"])
    run.scheduler.load_state_dict(saved["scheduler"])
    if saved.get("scaler"):  # empty when written without fp16 autocast
        run.scaler.load_state_dict(saved["scaler"])
    _set_rng_state(run, saved.get("rng"), directory)
    log.info("resumed from %s at epoch %d, step %d", directory, state.epoch, state.step)
    return state


def _set_rng_state(run: _Run, saved: dict[str, Any] | None, directory: Path) -> None:
    """Continue every generator where the checkpoint left it; warn when that is impossible (the run then differs)."""
    if saved is None or saved["device"] != run.device.type:
        why = "it has no RNG state (older vda)" if saved is None else f"it was written on {saved['device']}"
        log.warning("%s: %s, so the resumed run draws other noise, dropout and mixing than an uninterrupted "
                    "one would; resume on the device it was written on for an exact continuation", directory, why)
        return
    torch.set_rng_state(saved["torch"])
    run.noise.set_state(saved["noise"])
    if "cuda" in saved:
        torch.cuda.set_rng_state(saved["cuda"], run.device)


# ---------------------------------------------------------------- CLI


def _config_help() -> str:
    lines = ["config keys (override with key=value):"]
    for key, value in flatten(TrainConfig().to_dict()).items():
        note = KEY_NOTES.get(key)
        lines.append(f"  {key} = {value!r}" + (f"  ({note})" if note else ""))
    return "\n".join([*lines, "", "allowed values:", *format_choices(CHOICES)])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vda.train", description=__doc__.split("\n\n")[0],
                                     epilog=_config_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="config overrides like vda.sigma=0.05 data.dataset=mr")
    parser.add_argument("--config", type=Path, help="YAML file with a TrainConfig (nested keys)")
    parser.add_argument("--output-dir", type=Path, default=None, help="run directory (default runs/<time>)")
    parser.add_argument("--resume", type=Path, default=None, help="a <run_dir>/last checkpoint to continue")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 trained, 2 unusable input (config, data, checkpoint, vocabulary), printed without a traceback."""
    # intermixed: overrides may come before and after options (... data.x=1 --quiet data.y=2)
    args = _parser().parse_intermixed_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run_dir = args.output_dir or Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    existed = run_dir.exists()
    started = time.time()
    try:
        cfg = load_config(args.config, args.overrides)
        result = fit(cfg, run_dir, resume_from=args.resume, progress=not args.quiet)
    except (ConfigError, DataError, CheckpointError, VocabularyMismatchError) as exc:
        if not existed:
            _remove_if_empty(run_dir)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"run_dir": str(result.run_dir), "best_checkpoint": str(result.best_dir),
                      "best": result.best_metrics, "test": result.test_metrics,
                      "seconds": round(time.time() - started, 1)}, indent=2))
    return 0


def _remove_if_empty(run_dir: Path) -> None:
    """A run that failed before writing anything leaves no empty directory behind to be mistaken for a run."""
    if run_dir.is_dir() and not any(run_dir.iterdir()):
        run_dir.rmdir()


if __name__ == "__main__":
    sys.exit(main())
