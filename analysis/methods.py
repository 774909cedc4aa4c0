"""Which method, configuration and seed each attacked checkpoint is, from the training config it recorded.

A store's summary carries every checkpoint's training config (``config.*`` columns). ``row_name``
names its method the way the paper's tables do ('BERT', 'FreeLB+VDA', 'BERT+VDA+ADA'...),
``configurations`` says which other settings tell two runs apart, and ``one_checkpoint_per_seed``
keeps one checkpoint per seed. The paper's tables (``reproduce``) and the readers' verdicts
(``verdicts.method_groups``: the Review tab samples per method) group checkpoints this way.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import pandas as pd

log = logging.getLogger("analysis.methods")

STRATEGY_NAMES = {"plain": "BERT", "freelb": "FreeLB", "smart": "SMART", "smix": "SMix"}
# config.* columns that say how a run was executed, not what it trained: never a configuration of their own
OPERATIONAL = ("config.seed", "config.device", "config.precision", "config.num_threads", "config.eval_batch_size",
               "config.eval_test", "config.keep_epoch_checkpoints", "config.recipe", "config.vda.chunk_positions",
               "config.vda.cache_mb", "config.vda.shared_candidates")
# regularisers a row's name carries (``row_name``: "BERT+LS", "BERT+CP") and its Δ pairs without, as VDA's
ADD_ONS = {"config.strategy.label_smoothing": "LS", "config.strategy.confidence_penalty": "CP"}
# config.* columns the row's name and mode already say (``row_name``)
NAMED = ("config.strategy.name", "config.model", "config.data.extra_train_file", "config.vda.mode",
         "config.vda.augment", "config.vda.loss", "config.vda.noise")


def varied_config(frame: pd.DataFrame) -> list[str]:
    """``config.*`` columns whose value differs between rows: what distinguishes the configurations."""
    columns = [c for c in frame.columns if c.startswith("config.")]
    return [c for c in columns if frame[c].astype(str).nunique() > 1]


def row_name(config: Mapping[str, Any]) -> str:
    """The paper's label of one run from its recorded config (``config.*`` columns, prefix stripped).

    'BERT', 'FreeLB+VDA', 'RoBERTa+VDA', 'BERT+VDA-eps', 'BERT+CE-VDA', 'BERT+Argmax', 'BERT+VDA+ADA'...
    Label smoothing and the confidence penalty name themselves ('BERT+LS', 'BERT+CP+VDA'): they are
    what the mechanism study (docs/results/mechanism-mr.md) compares with VDA, each paired with plain.
    """
    strategy = str(_value(config, "strategy.name", "plain"))
    if strategy == "plain" and "roberta" in str(_value(config, "model", "")).lower():
        parts = ["RoBERTa"]
    else:
        parts = [STRATEGY_NAMES.get(strategy, strategy)]
    parts += [name for column, name in ADD_ONS.items() if float(_value(config, column[len("config."):], 0.0)) > 0]
    if float(config["vda.lam"]) > 0:
        augment = str(_value(config, "vda.augment", "mixture"))
        vda = augment.capitalize() if augment != "mixture" else (
            "CE-VDA" if _value(config, "vda.loss", "symkl") == "ce" else "VDA")
        parts.append(vda if str(_value(config, "vda.noise", True)).lower() != "false" else f"{vda}-eps")
    if _value(config, "data.extra_train_file", ""):
        parts.append("ADA")
    return "+".join(parts)


def _value(config: Mapping[str, Any], key: str, default: Any) -> Any:
    """``config[key]``, or ``default`` where the store has no such column or no value (NaN) for this run."""
    value = config.get(key, default)
    return default if value is None or (isinstance(value, float) and value != value) else value


def one_checkpoint_per_seed(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` (a summary with ``row``, ``mode`` and ``configuration``) that stand for a
    seed: one per (attack key, row, mode, configuration, seed). Runs of two configurations (another
    sigma, k, lambda or lr: an Optuna store's lambda grid at one seed) are two rows of the table,
    never one seed trained twice.

    An epoch is not a seed: with every epoch attacked (``sweep.attack.checkpoints: every_epoch``) a
    run has one checkpoint per epoch, and the one it stands for is the one it selected, its best
    epoch by its selection metric (the earliest of equal ones: ``vda.train`` marks only strict
    improvements best). A seed trained twice (a resumed grid retrains a row under new trial ids) is
    one seed: the latest-created run's checkpoint stands for it, the others are set aside with a
    warning. Counting either as more seeds would narrow the intervals and cross-pair the Δ.
    """
    best = frame.assign(_score=_selection_score(frame)).sort_values(
        ["_score", "epoch", "checkpoint_hash"], ascending=[False, True, True], na_position="last", kind="stable")
    per_run = best.drop_duplicates(["attack_key", "run_id"])
    latest = per_run.sort_values(["created", "checkpoint_hash"], ascending=[False, True], kind="stable")
    chosen = latest.drop_duplicates(["attack_key", "row", "mode", "configuration", "config.seed"])
    if len(chosen) < len(per_run):
        log.warning("%d run(s) repeat a seed already in their row; each seed counts once, its latest run: "
                    "set aside %s", len(per_run) - len(chosen),
                    ", ".join(sorted(set(per_run["run_id"]) - set(chosen["run_id"]))))
    return frame[frame.index.isin(chosen.index)]


def _selection_score(frame: pd.DataFrame) -> pd.Series:
    """Each checkpoint's value of its run's selection metric, higher better (a loss negated); NaN if unknown."""
    metrics = frame.get("config.selection_metric", pd.Series("dev_acc", index=frame.index)).fillna("dev_acc")
    values = [frame.at[i, f"metrics.{m}"] if f"metrics.{m}" in frame else float("nan") for i, m in metrics.items()]
    signs = [-1.0 if str(m).endswith("loss") else 1.0 for m in metrics]
    return pd.Series(values, index=frame.index, dtype=float) * signs


def configurations(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(each run's settings that differ between the store's runs besides its seed, row and mode; the same
    without VDA's and the add-ons' (``ADD_ONS``), which a base run's Δ pairs on). '' where nothing else
    differs. The add-ons' values stay in the first: two label-smoothing weights are two configurations.

    A run without VDA (lambda 0) shows no ``vda.*`` setting: they change nothing there.
    """
    varied = [c for c in varied_config(frame) if c not in OPERATIONAL and c not in NAMED]
    vda_off = frame["config.vda.lam"].astype(float) == 0

    def describe(columns: list[str], row: pd.Series, off: bool) -> str:
        return " ".join(f"{c[len('config.'):]}={row[c]}" for c in columns if not (off and c.startswith("config.vda.")))

    shared = [c for c in varied if not c.startswith("config.vda.") and c not in ADD_ONS]
    full = [describe(varied, row, off) for (_, row), off in zip(frame.iterrows(), vda_off)]
    base = [describe(shared, row, True) for _, row in frame.iterrows()]
    return pd.Series(full, index=frame.index), pd.Series(base, index=frame.index)
