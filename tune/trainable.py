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
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from typing import Any, Mapping

import ray
from ray import tune

from tune.space import VARIANT_KEY, train_config, trial_overrides
from vda.train import EpochReport, fit

IS_BEST = "is_best"  # reported metric: 1 when the epoch improved the selection metric, else 0
NODE_ID = "node_id"  # reported with every epoch: the Ray node that trained it (Tune's node_ip cannot tell apart
# two nodes of one machine); a trial retried on another node shows both in its result.json


def train_trial(sampled: dict[str, Any], *, fixed: Mapping[str, Any], variants: Mapping[str, Mapping[str, Any]],
                cpus: float) -> None:
    """Train one trial; ``sampled`` is Tune's config (dotted keys and ``variant``), the rest is fixed."""
    context = tune.get_context()
    cfg = train_config(fixed, trial_overrides(sampled, variants), f"trial {context.get_trial_id()}")
    if not cfg.num_threads:  # torch would use every core of the node and oversubscribe it
        cfg = dataclasses.replace(cfg, num_threads=max(1, int(cpus)))
    variant = sampled.get(VARIANT_KEY)
    run_id = f"{context.get_trial_id()}-{variant}" if variant else context.get_trial_id()
    node_id = ray.get_runtime_context().get_node_id()

    def report(epoch: EpochReport) -> None:
        best_test = {f"best_{k}": v for k, v in epoch.best_test.items()}
        tune.report({**epoch.metrics, **best_test, IS_BEST: int(epoch.is_best), NODE_ID: node_id},
                    checkpoint=tune.Checkpoint.from_directory(str(epoch.checkpoint_dir)))

    checkpoint = tune.get_checkpoint()
    # fit's run directory is a scratch copy: every epoch is in Tune's storage once reported. Outside the
    # trial directory, whose files Tune would upload as artifacts.
    with tempfile.TemporaryDirectory(prefix=f"vda-{context.get_trial_id()}-") as run_dir, \
            checkpoint.as_directory() if checkpoint else contextlib.nullcontext() as resume_from:
        fit(cfg, run_dir, on_epoch_end=report, resume_from=resume_from, run_id=run_id, progress=False)
