"""Sweep-scale speed in one run: VDA epochs with the shared candidate table, sweep overhead, attack scaling.

    ../shared/bin/offline .venv/bin/python benchmarks/sweep_scale.py              # ~30 min on 2 CPUs
    ../shared/bin/offline .venv/bin/python benchmarks/sweep_scale.py --only epochs --rounds 3

Part 1 (epochs): real ``vda.train.fit`` runs of plain fine-tuning and VDA (sharp, k=1) on the same
MR subsample, two epochs each, in alternating rounds (plain, VDA, plain, VDA...;
``benchmarks/rounds.py``). The shared candidate table is made once before the first round, as the
sweep does at its start, so every VDA run loads it: its first epoch should cost what its later
ones do. Each epoch's ``train_seconds`` (the training loop alone, from the trainer's history) gives
seconds per step; the ratio to plain is taken within a round against the floor (k+1)x = 2x.

Part 2 (sweep): the default sweep (``tune/configs/default.yaml``, or ``--config``) into a scratch
directory. Its wall time is set against the sum of its trials' training times (Tune's
``time_total_s``: the trial function from start to last report) plus the tail: the attack still
running after the last trial ended. The up-front candidate table (MLM work that used to be inside
the first epoch of every VDA trial) is timed and shown on its own; the rest is the overhead of
Ray, Tune, the pipeline, trial start-up and the final report. The tail's workers show whether the
pool grew into the cores the trials freed.

Part 3 (attack): the attack pool with 1 and 2 actors, word filter on (``vda-paper``), alternating
rounds: ``benchmarks/attack_throughput.py``'s scaling part.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.rounds import alternate, ratio_spread, spread  # noqa: E402


# ---------------------------------------------------------------------------- part 1: epochs


def epoch_configs(args: argparse.Namespace) -> dict[str, Any]:
    """Plain and VDA k=1 configs that differ in the VDA term only."""
    from vda.config import load_config

    common = ["lr=1e-4", f"batch_size={args.batch_size}", "epochs=2", "eval_test=false",
              f"data.max_train_examples={args.train_examples}", "data.max_eval_examples=16", "data.max_length=64",
              f"num_threads={args.threads}", "vda.mode=sharp", "vda.k=1", "vda.sigma=1.0"]
    return {"plain": load_config(overrides=common + ["vda.lam=0"]),
            "vda": load_config(overrides=common + ["vda.lam=1"])}


def epoch_seconds_per_step(cfg: Any, scratch: Path) -> list[float]:
    """One fit; seconds per optimizer step of each epoch's training loop."""
    from vda.train import fit

    with tempfile.TemporaryDirectory(dir=scratch) as run_dir:
        result = fit(cfg, run_dir, progress=False)
    if cfg.vda.enabled and (result.candidates is None or result.candidates.source != "loaded"):
        raise SystemExit(f"the VDA run did not load the shared candidate table ({result.candidates}): "
                         "this part measures runs after the one that made it")
    history = result.history
    steps = [h["step"] - (history[i - 1]["step"] if i else 0) for i, h in enumerate(history)]
    return [h["train_seconds"] / n for h, n in zip(history, steps)]


def epochs_part(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    from vda.train import prepare_candidates

    configs = epoch_configs(args)
    started = time.perf_counter()
    prepare_candidates(configs["vda"], progress=False)  # what the sweep does at its start
    print(f"candidate table ready in {time.perf_counter() - started:.1f} s (a no-op when it already existed)")
    runs = alternate({name: (lambda cfg=cfg: epoch_seconds_per_step(cfg, scratch)) for name, cfg in configs.items()},
                     args.rounds, lambda r, now: print(f"round {r + 1}: " + ", ".join(
                         f"{n} " + "/".join(f"{s * 1000:.0f}" for s in v) + " ms/step" for n, v in now.items()),
                         flush=True))
    rows = {}
    for epoch in (0, 1):
        plain = [r[epoch] for r in runs["plain"]]
        vda = [r[epoch] for r in runs["vda"]]
        rows[f"epoch {epoch + 1}"] = {"plain_ms": spread(plain).median * 1000, "vda_ms": spread(vda).median * 1000,
                                      "ratio": ratio_spread(vda, plain)}
    print(f"\n## VDA k=1 (sharp, shared table warm) vs plain: MiniLM, {args.train_examples} MR examples, "
          f"B={args.batch_size}, L<=64, {args.threads} threads, {args.rounds} rounds (median (min-max))\n")
    print("| epoch | plain ms/step | VDA ms/step | VDA / plain | vs floor 2x |")
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        ratio = row["ratio"]
        floor = dataclasses.replace(ratio, median=ratio.median / 2, low=ratio.low / 2, high=ratio.high / 2)
        print(f"| {name} | {row['plain_ms']:.0f} | {row['vda_ms']:.0f} | {ratio.text()} | {floor.text()} |")
    return rows


# ---------------------------------------------------------------------------- part 2: sweep


@dataclasses.dataclass
class TrialTime:
    trial_id: str
    variant: str
    seconds: float  # Tune's time_total_s at the last report
    ended: float  # unix time of the last report


def trial_times(experiment_path: Path) -> list[TrialTime]:
    out = []
    for result_file in sorted(experiment_path.glob("*/result.json")):
        results = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
        if results:
            last = results[-1]
            out.append(TrialTime(last["trial_id"], str(last["config"].get("variant", "")), last["time_total_s"],
                                 float(last["timestamp"])))
    return out


def sweep_part(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    import tune.sweep
    from attack_workers.results.store import ResultStore
    from tune.config import load_sweep

    name = f"bench-sweep-{int(time.time())}"
    spec = load_sweep(args.config, [*args.set, f"sweep.name={name}", f"sweep.output_dir={scratch}"])
    table_seconds = _timed(tune.sweep, "prepare_candidate_tables")
    started = time.time()
    outcome = tune.sweep.run_sweep(spec, progress=False)
    wall = time.time() - started
    trials = trial_times(Path(outcome.experiment_path))
    rows = ResultStore(outcome.output_dir / "store").load_examples()
    last_trial_end = max(t.ended for t in trials)
    last_shard = float(rows["finished_at"].max())
    tail = max(0.0, last_shard - last_trial_end)
    tail_workers = sorted(rows.loc[rows["finished_at"] > last_trial_end, "worker"].unique())
    trained = sum(t.seconds for t in trials)
    table = sum(table_seconds)
    overhead = wall - trained - tail - table
    print(f"\n## The sweep {args.config or 'default'} ({len(trials)} trials, {len(rows)} attacked examples)\n")
    print("| trial | variant | training s |")
    print("|---|---|---|")
    for t in trials:
        print(f"| {t.trial_id} | {t.variant} | {t.seconds:.0f} |")
    by_variant = {t.variant: t.seconds for t in trials}
    if "baseline" in by_variant:
        for variant, seconds in by_variant.items():
            if variant != "baseline":
                print(f"\n{variant} trial / baseline trial: {seconds / by_variant['baseline']:.2f}x")
    print(f"\nwall {wall:.0f} s = trials {trained:.0f} s + attack tail {tail:.0f} s (on {len(tail_workers)} "
          f"worker(s)) + up-front candidate table {table:.0f} s + overhead {overhead:.0f} s "
          f"({100 * overhead / trained:.1f} % of the trials' time; with the table {100 * (overhead + table) / trained:.1f} %)")
    return {"wall": wall, "trained": trained, "tail": tail, "tail_workers": len(tail_workers), "table": table,
            "overhead": overhead}


def _timed(module: Any, name: str) -> list[float]:
    """Wrap ``module.name`` so that each call's seconds are appended to the returned list."""
    seconds: list[float] = []
    original = getattr(module, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.time()
        try:
            return original(*args, **kwargs)
        finally:
            seconds.append(time.time() - started)

    setattr(module, name, timed)
    return seconds


# ---------------------------------------------------------------------------- part 3: attack


def attack_part(args: argparse.Namespace, scratch: Path) -> int:
    import ray

    from benchmarks.attack_throughput import bench_checkpoint, scaling

    attack_args = argparse.Namespace(scaling_examples=args.attack_examples, scaling_candidates=48,
                                     scaling_protocol="vda-paper", rounds=args.rounds, seed=0, shard_size=2)
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    try:
        return scaling(bench_checkpoint(REPO / "runs" / "bench-mr"), attack_args, scratch)
    finally:
        ray.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["all", "epochs", "sweep", "attack"], default="all")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-examples", type=int, default=320, help="part 1: MR training examples per fit")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="part 1: torch threads")
    parser.add_argument("--config", help="part 2: sweep config (default: the default sweep)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="part 2: a sweep override, e.g. fixed.data.max_train_examples=256 (repeatable)")
    parser.add_argument("--attack-examples", type=int, default=120, help="part 3: examples over all rounds")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    status = 0
    with tempfile.TemporaryDirectory(prefix="sweep-scale-") as tmp:
        scratch = Path(tmp)
        print(f"load {os.getloadavg()[0]:.1f}", flush=True)
        if args.only in ("all", "epochs"):
            epochs_part(args, scratch)
        if args.only in ("all", "sweep"):
            sweep_part(args, scratch)
        if args.only in ("all", "attack"):
            status = attack_part(args, scratch)
        print(f"load {os.getloadavg()[0]:.1f}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
