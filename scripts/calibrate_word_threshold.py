"""Calibrate the vda-paper protocol's word-similarity threshold on held-out data.

    ../shared/bin/offline .venv/bin/python scripts/calibrate_word_threshold.py runs/calib-victim/best \
        --thresholds 0.3,0.4,0.5,0.6,0.7 --num-examples 100 --split test --store results/calibration/store

Why: the VDA authors' filter keeps a substitute when its counter-fitted cosine with the original
word is >= 0.7, but that number belongs to *their* vectors; copied onto ours it is stricter or
looser by an unknown amount. The rule used here instead: attack one checkpoint on examples no
study uses (the test split; studies attack dev) at several thresholds, and take the loosest
threshold whose successful attacks the validity audit flags at most ``--max-flagged`` (2 %) of
the time. Loosest, because a stricter filter only makes the attack weaker without making its
successes more valid. Prints one row per threshold and the chosen value; every row stays in the
store (one attack key per threshold).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attack_workers.runtime.evaluation import EvalConfig, evaluate, ray_session  # noqa: E402
from attack_workers.runtime.pool import AttackPool, PoolConfig  # noqa: E402
from attack_workers.attack.protocols import AttackParams  # noqa: E402
from attack_workers.results.uncertainty import format_ci  # noqa: E402
from attack_workers.runtime.worker import WorkerConfig  # noqa: E402

COLUMNS = ("attack_acc", "attack_acc_low", "attack_acc_high", "attack_success_rate", "flagged_share",
           "flagged_antonym_share", "flagged_polarity_share", "flagged_nonword_share", "hole_share", "avg_queries",
           "perturbed_pct", "num_succeeded")


def choose(rows: list[dict[str, float]], max_flagged: float) -> float | None:
    """The loosest (lowest) threshold whose flagged share is at most ``max_flagged``."""
    valid = [r["threshold"] for r in rows if not math.isnan(r["flagged_share"]) and r["flagged_share"] <= max_flagged]
    return min(valid) if valid else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--store", default="results/calibration/store")
    parser.add_argument("--thresholds", default="0.3,0.4,0.5,0.6,0.7")
    parser.add_argument("--num-examples", type=int, default=100)
    parser.add_argument("--split", default="test", help="held out from every study (studies attack dev)")
    parser.add_argument("--max-flagged", type=float, default=0.02)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    worker = WorkerConfig()
    rows = []
    with ray_session(None), AttackPool(worker, PoolConfig(num_workers=args.workers)) as pool:
        for threshold in (float(t) for t in args.thresholds.split(",")):
            config = EvalConfig(store=args.store, protocol="vda-paper", split=args.split,
                                num_examples=args.num_examples,
                                params=AttackParams(word_similarity_threshold=threshold))
            report = evaluate([args.checkpoint], config, worker, attack_pool=pool)
            rows.append({"threshold": threshold, **{c: float(report.summary.iloc[0][c]) for c in COLUMNS}})
    print("\n| threshold | Att Acc [95% CI] | success rate | flagged | antonym | polarity | non-word | hole "
          "| Q Num | Perturb % | successes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['threshold']:.2f} | {format_ci(r['attack_acc'], r['attack_acc_low'], r['attack_acc_high'])} "
              f"| {r['attack_success_rate']:.3f} | {r['flagged_share']:.3f} | {r['flagged_antonym_share']:.3f} "
              f"| {r['flagged_polarity_share']:.3f} | {r['flagged_nonword_share']:.3f} | {r['hole_share']:.3f} "
              f"| {r['avg_queries']:.1f} | {r['perturbed_pct']:.1f} | {int(r['num_succeeded'])} |")
    chosen = choose(rows, args.max_flagged)
    print(f"\nloosest threshold with flagged share <= {args.max_flagged:.0%}: {chosen}")
    return 0 if chosen is not None else 1


if __name__ == "__main__":
    sys.exit(main())
