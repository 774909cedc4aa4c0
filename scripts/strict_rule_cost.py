"""What each ``strict`` v3 rule costs in attack success, as Morris et al. (2020) report it.

    ../shared/bin/offline .venv/bin/python scripts/strict_rule_cost.py runs/ckpt/best \
        --store results/rule-cost/store --split test --num-examples 200 --attacks bert-attack,textfooler,pwws

Why: a rule that refuses what readers reject also refuses some real adversarial examples; the
price is the attack success it removes. Attacks one checkpoint under ``strict`` with every v3 rule
(the defaults of ``AttackParams``), with each v3 rule switched off in turn, and with all three off
(v2's rules, but with hyphenated two-word idioms), on the same examples (the test split by default:
no study attacks it, so these successes are fresh for reading). Every setting is its own attack
key in the store, so a rerun resumes and the successes can be sampled for reading
(``scripts/sample_for_reading.py``). Prints one row per setting and attack: successes, success
rate, Att Acc, and the successes the rule removes (setting without it minus all rules). Settings run
in ``SETTINGS`` order, the most telling first; a run cut short keeps its rows (rerun to resume, or
``python -m attack_workers summary --store S``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attack_workers.attack.protocols import AttackParams  # noqa: E402

SETTINGS: dict[str, dict[str, object]] = {
    "v3 (every rule)": {},
    "v2 (none of the three)": {"strict_max_collocation_words": 2, "strict_refuse_polarity_flip": False,
                               "strict_sense_candidates": 0},
    "without the sense check": {"strict_sense_candidates": 0},
    "without idioms of 3-4 words": {"strict_max_collocation_words": 2},
    "without the polarity check": {"strict_refuse_polarity_flip": False},
}
"""Each setting's ``AttackParams`` changes from the defaults (which are v3's rules)."""


def settings_params(base: AttackParams) -> dict[str, AttackParams]:
    """``SETTINGS`` applied to ``base`` (validated)."""
    return {name: dataclasses.replace(base, **changes).validate() for name, changes in SETTINGS.items()}


def cost_table(rows: list[dict[str, object]]) -> str:
    """Markdown: per attack and setting, the successes and what the setting's missing rule costs."""
    full = {r["attack"]: int(r["num_succeeded"]) for r in rows if r["setting"] == "v3 (every rule)"}
    lines = ["| attack | setting | examples | successes | success rate | Att Acc | successes the rule(s) remove |",
             "|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (str(r["attack"]), list(SETTINGS).index(str(r["setting"])))):
        removed = int(r["num_succeeded"]) - full[r["attack"]] if r["attack"] in full else float("nan")
        lines.append(f"| {r['attack']} | {r['setting']} | {int(r['num_examples'])} | {int(r['num_succeeded'])} "
                     f"| {float(r['attack_success_rate']):.3f} | {float(r['attack_acc']):.3f} "
                     f"| {'' if r['setting'] == 'v3 (every rule)' else removed} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from attack_workers.runtime.evaluation import EvalConfig, evaluate, ray_session
    from attack_workers.runtime.pool import AttackPool, PoolConfig
    from attack_workers.runtime.worker import WorkerConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--store", default="results/rule-cost/store")
    parser.add_argument("--split", default="test", help="test: successes no study attacks (studies attack dev)")
    parser.add_argument("--num-examples", type=int, default=200)
    parser.add_argument("--attacks", default="bert-attack,textfooler,pwws")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    worker = WorkerConfig()
    rows: list[dict[str, object]] = []
    with ray_session(None), AttackPool(worker, PoolConfig(num_workers=args.workers)) as pool:
        for setting, params in settings_params(AttackParams()).items():
            config = EvalConfig(store=args.store, protocol="strict", split=args.split, num_examples=args.num_examples,
                                params=params, attacks=tuple(a for a in args.attacks.split(",") if a))
            report = evaluate([args.checkpoint], config, worker, attack_pool=pool)
            rows += [{"setting": setting, **row} for row in report.summary.to_dict("records")]
    print(cost_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
