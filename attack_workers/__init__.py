"""Parallel robustness evaluation: BERT-Attack on a pool of Ray actors, into a Parquet results store.

    python -m attack_workers evaluate runs/ --store results/attacks     # attack every checkpoint below runs/
    python -m attack_workers summary --store results/attacks           # the paper's table

Python API: ``evaluate(checkpoints, EvalConfig(store=...))``; ``load_summary(store)`` and
``load_examples(store)`` return pandas DataFrames. Protocols (how the attack is built and its
metrics counted) are in ``PROTOCOLS``. Importing this package loads neither TextAttack nor Ray;
the workers do (``attack_workers.attack.offline`` provisions TextAttack for offline use).
"""

from attack_workers.runtime.evaluation import EvalConfig, EvalReport, evaluate
from attack_workers.attack.protocols import PROTOCOLS, AttackParams
from attack_workers.results.store import ResultStore, load_examples, load_summary

__all__ = ["PROTOCOLS", "AttackParams", "EvalConfig", "EvalReport", "ResultStore", "evaluate", "load_examples",
           "load_summary"]
