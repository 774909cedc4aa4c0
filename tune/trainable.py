"""The Tune trainable: one trial is one ``vda.train.fit`` run that reports every epoch to Tune.

Each epoch's ``<run_dir>/last`` checkpoint (model, manifest, optimizer state) is reported with
``tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(...))`` and Tune copies it into
the experiment storage. A retried or restored trial gets it back from ``tune.get_checkpoint()``
and ``fit`` continues after that epoch, so no finished epoch is trained twice. ``is_best`` marks
the epochs that improved ``selection_metric``; ``tune.search.checkpoint_config`` keeps the latest
of those, which is the trial's best checkpoint, for the attack pipeline.

With ``fixed.eval_test`` (the default) every improving epoch is also evaluated on the test split:
its checkpoint's manifest and that epoch's result carry ``test_acc``/``test_loss``, and every
result carries ``best_test_acc``/``best_test_loss``, the best epoch so far's. The trial's last
result thus holds its selected model's test metrics, also when the trial was restored mid-run.

Before training, a trial computes its training key and looks it up in ``stored`` (the store's
trained cells, read by the sweep before launching: ``tune.study``). A stored cell is reported from
the store: one result with its metrics and ``reused_from_store=1``, no checkpoint, no training.
After the sweep's ``--max-minutes`` (``deadline``) a trial that has not started yet reports
``skipped_by_budget=1`` and returns. Every checkpoint a trial trains carries ``training.json``
(its training key and code version), which the store copies into the checkpoint's rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import tempfile
import time
from typing import Any, Mapping

import ray
from ray import tune

from tune.config import OBJECTIVES
from tune.space import VARIANT_KEY, train_config, trial_overrides
from tune.study import (BUDGET_SKIPPED, MISSING, REUSED, REUSED_HASH, REUSED_PATH, TRAINING_FILE, TRAINING_KEY,
                        cells_from_table, decide)
from vda.config import TrainConfig
from vda.train import EpochReport, fit
from vda.training_version import training_key

IS_BEST = "is_best"  # reported metric: 1 when the epoch improved the selection metric, else 0
NODE_ID = "node_id"  # reported with every epoch: the Ray node that trained it (Tune's node_ip cannot tell apart
# two nodes of one machine); a trial retried on another node shows both in its result.json


def train_trial(sampled: dict[str, Any], *, fixed: Mapping[str, Any], variants: Mapping[str, Mapping[str, Any]],
                cpus: float, training_code: int = 0, stored: Mapping[str, Mapping[str, Any]] | None = None,
                retrain_missing: bool = False, deadline: float | None = None) -> None:
    """Train one trial; ``sampled`` is Tune's config (dotted keys and ``variant``), the rest is fixed.

    ``training_code``: the training-code version of the key; ``stored``: ``tune.study.cell_table`` of
    the store; ``deadline``: unix time after which a trial that has not started does not train."""
    context = tune.get_context()
    cfg = train_config(fixed, trial_overrides(sampled, variants), f"trial {context.get_trial_id()}")
    key = training_key(cfg.to_dict(), training_code)
    decision = decide(key, cells_from_table(stored or {}), retrain_missing)
    checkpoint = tune.get_checkpoint()
    if decision.cell is not None:  # reuse, or stored but gone: Tune is told once, nothing is trained
        cell = decision.cell
        marker = ({REUSED: 1, REUSED_PATH: cell.path, REUSED_HASH: cell.checkpoint_hash}
                  if decision.action == "reuse" else {MISSING: 1})
        tune.report({**_worst(cfg), **cell.metrics, IS_BEST: 1, TRAINING_KEY: key, **marker})
        return
    if deadline is not None and time.time() > deadline and checkpoint is None:
        tune.report({**_worst(cfg), BUDGET_SKIPPED: 1, TRAINING_KEY: key})
        return
    if not cfg.num_threads:  # torch would use every core of the node and oversubscribe it
        cfg = dataclasses.replace(cfg, num_threads=max(1, int(cpus)))
    variant = sampled.get(VARIANT_KEY)
    run_id = f"{context.get_trial_id()}-{variant}" if variant else context.get_trial_id()
    node_id = ray.get_runtime_context().get_node_id()

    def report(epoch: EpochReport) -> None:
        best_test = {f"best_{k}": v for k, v in epoch.best_test.items()}
        (epoch.checkpoint_dir / TRAINING_FILE).write_text(json.dumps({TRAINING_KEY: key,
                                                                      "training_code": training_code}))
        tune.report({**epoch.metrics, **best_test, IS_BEST: int(epoch.is_best), NODE_ID: node_id, TRAINING_KEY: key},
                    checkpoint=tune.Checkpoint.from_directory(str(epoch.checkpoint_dir)))

    # fit's run directory is a scratch copy: every epoch is in Tune's storage once reported. Outside the
    # trial directory, whose files Tune would upload as artifacts.
    with tempfile.TemporaryDirectory(prefix=f"vda-{context.get_trial_id()}-") as run_dir, \
            checkpoint.as_directory() if checkpoint else contextlib.nullcontext() as resume_from:
        fit(cfg, run_dir, on_epoch_end=report, resume_from=resume_from, run_id=run_id, progress=False)


def _worst(cfg: TrainConfig) -> dict[str, float]:
    """The selection metric at its worst: Tune checks that every result carries the metric its scheduler and
    searcher watch, and a trial that trained nothing must not look good to them."""
    return {cfg.selection_metric: -math.inf if OBJECTIVES[cfg.selection_metric].mode == "max" else math.inf}
