"""Draw successful attacks from a results store for a person to read, one CSV per protocol.

Why: an audit is a list of word rules, and rules miss what a reader sees at once ("a lots
smarter"). Every robustness number here is reported with the verdicts of a reader on a random
sample of its successes (docs/results/reading/). This script draws that sample (seeded, so it can
be redrawn), one file per protocol and attack recipe (``<prefix><protocol>.csv`` for BERT-Attack,
``<prefix><protocol>-<attack>.csv`` for the others), and writes it with an empty ``verdict`` column; the reader fills ``verdict``
(``acceptable``: same meaning and grammatical English; else ``reject``) and ``reason``. An existing
file's verdicts are kept for the rows drawn again.

Usage:
    .venv/bin/python scripts/sample_for_reading.py --store results/vda-default/store --out docs/results/reading
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from attack_workers.results.store import load_examples

COLUMNS = ["protocol", "attack", "checkpoint_hash", "example_id", "original_text", "perturbed_text", "substitutions",
           "audit_flagged", "verdict", "reason"]


def sample(examples: pd.DataFrame, protocol: str, attack: str, n: int, seed: int) -> pd.DataFrame:
    """``n`` successes of ``attack`` under ``protocol`` drawn at random (all of them when there are fewer)."""
    succeeded = examples[(examples["protocol"] == protocol) & (examples["attack"] == attack)
                         & (examples["status"] == "succeeded")]
    drawn = succeeded.sample(n=min(n, len(succeeded)), random_state=seed).sort_values(["checkpoint_hash", "example_id"])
    return drawn.assign(verdict="", reason="")[COLUMNS]


def keep_verdicts(drawn: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Carry over the verdicts a reader already wrote for the same (checkpoint, example, text)."""
    if not path.is_file():
        return drawn
    old = pd.read_csv(path, keep_default_na=False).set_index(["checkpoint_hash", "example_id", "perturbed_text"])
    merged = drawn.set_index(["checkpoint_hash", "example_id", "perturbed_text"])
    for column in ("verdict", "reason"):
        merged[column] = old[column].reindex(merged.index).fillna("").values
    return merged.reset_index()[COLUMNS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", action="append", required=True, help="a results store (repeatable)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prefix", default="", help="file name prefix, e.g. 'study-' (keeps older records apart)")
    args = parser.parse_args()
    examples = pd.concat([load_examples(s) for s in args.store], ignore_index=True)
    args.out.mkdir(parents=True, exist_ok=True)
    for protocol, attack in sorted(examples[["protocol", "attack"]].drop_duplicates().itertuples(index=False)):
        suffix = "" if attack == "bert-attack" else f"-{attack}"
        path = args.out / f"{args.prefix}{protocol}{suffix}.csv"
        drawn = keep_verdicts(sample(examples, protocol, attack, args.n, args.seed), path)
        drawn.to_csv(path, index=False)
        print(f"{path}: {len(drawn)} successes to read")


if __name__ == "__main__":
    main()
