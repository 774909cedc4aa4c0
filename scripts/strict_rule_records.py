"""How each ``strict`` v3 rule separates the reading records' accepted successes from the rejected ones.

    ../shared/bin/offline .venv/bin/python scripts/strict_rule_records.py docs/results/reading/*.csv

Why: a rule earns its place in ``strict`` only if it refuses more of what readers rejected than of
what they accepted (issue 30). Each rule is evaluated as a predicate on every recorded swap (the
words that differ between a record's original and perturbed text, split as TextAttack splits them),
with the code ``strict`` runs: a record is refused when the rule refuses any of its swaps. Counted
per record row and per distinct (original, perturbed) text (the same success recurs across
checkpoints and attacks), separately for the ``strict`` records and for all records. The
predicates that need the models (the sense check) load the packaged sentence encoder; nothing
is downloaded.

These are the records the rules were chosen from: the counts say which rule separates, not how
well the final set does on fresh successes (issue 30 item 5 measures that).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

Swap = tuple[list[str], int, str, str]  # original words, index, original word, substitute
Predicate = Callable[[Swap], bool]  # True: the rule refuses this swap


@dataclass(frozen=True)
class Record:
    protocol: str
    accepted: bool
    text: tuple[str, str]
    swaps: tuple[Swap, ...]


def load_records(paths: list[Path]) -> list[Record]:
    """Every row of the reading-record CSVs with its word swaps (rows whose word counts differ are skipped)."""
    from attack_workers.attack.offline import import_textattack

    import_textattack()
    from textattack.shared import AttackedText

    records = []
    for path in paths:
        for row in pd.read_csv(path, keep_default_na=False).itertuples():
            before, after = AttackedText(row.original_text).words, AttackedText(row.perturbed_text).words
            if len(before) != len(after):
                print(f"{path.name}: {row.example_id}: word counts differ, skipped", file=sys.stderr)
                continue
            swaps = tuple((before, i, a, b) for i, (a, b) in enumerate(zip(before, after)) if a != b)
            records.append(Record(row.protocol, row.verdict == "acceptable",
                                  (row.original_text, row.perturbed_text), swaps))
    return records


def v3_predicates(max_collocation_words: int, sense_candidates: int) -> dict[str, Predicate]:
    """The v3 rules as ``strict`` applies them, each and together, and v2's two-word idiom rule for comparison."""
    from attack_workers.attack.sentence_encoder import load_sentence_model
    from attack_workers.attack.strict import in_collocation, lemmas_of
    from attack_workers.lexicon.audit import is_polarity_flip
    from attack_workers.lexicon.resources import load_valence
    from attack_workers.lexicon.senses import SenseChooser
    from attack_workers.lexicon.tagger import Tagger, coarse

    tagger, valence = Tagger(), load_valence()
    chooser = SenseChooser(load_sentence_model("default"), candidates=sense_candidates)

    def wrong_sense(swap: Swap) -> bool:
        words, index, old, new = swap
        word_class = coarse(tagger.tag_at(words, index))
        return not chooser.keeps_sense(words, index, lemmas_of(old, word_class), lemmas_of(new, word_class),
                                       word_class)

    v3 = {
        f"idiom, up to {max_collocation_words} words": lambda s: in_collocation(s[0], s[1], max_collocation_words),
        "polarity flip": lambda s: is_polarity_flip(valence, s[2], s[3]),
        f"sense not among the {sense_candidates} that fit the context": wrong_sense,
    }
    return {"idiom, 2 words (v2's rule)": lambda s: in_collocation(s[0], s[1], 2), **v3,
            "any of the three": lambda s: any(refuses(s) for refuses in v3.values())}


def rarity_predicates(gaps: list[float]) -> dict[str, Predicate]:
    """The candidate rarity rule (dropped from v3): the substitute's Zipf frequency is ``gap`` below the
    original's. Needs ``wordfreq``, which the project does not install: ``pip install wordfreq==3.1.1``."""
    try:
        from wordfreq import zipf_frequency
    except ImportError:
        print("wordfreq is not installed: the rarity candidates are left out (pip install wordfreq==3.1.1)",
              file=sys.stderr)
        return {}

    def rarer(gap: float) -> Predicate:
        return lambda s: zipf_frequency(s[2].lower(), "en") - zipf_frequency(s[3].lower(), "en") >= gap

    return {f"substitute >= {gap} Zipf rarer": rarer(gap) for gap in gaps}


def separation(records: list[Record], refuses: Predicate) -> dict[str, int]:
    """Accepted and rejected records refused, per row and per distinct text (a text counts as refused
    when any of its rows is)."""
    out: dict[str, int] = {}
    for accepted, name in ((True, "accepted"), (False, "rejected")):
        rows = [r for r in records if r.accepted == accepted]
        refused = [r for r in rows if any(refuses(s) for s in r.swaps)]
        out.update({f"{name} rows": len(rows), f"{name} rows refused": len(refused),
                    f"{name} texts": len({r.text for r in rows}),
                    f"{name} texts refused": len({r.text for r in refused})})
    return out


def table(records: list[Record], predicates: dict[str, Predicate]) -> str:
    """A markdown table: per rule, the accepted and the rejected refused (rows; distinct texts)."""
    lines = ["| rule | accepted refused: rows | texts | rejected refused: rows | texts |", "|---|---|---|---|---|"]
    for name, refuses in predicates.items():
        c = separation(records, refuses)
        lines.append(f"| {name} | {c['accepted rows refused']} of {c['accepted rows']} "
                     f"| {c['accepted texts refused']} of {c['accepted texts']} "
                     f"| {c['rejected rows refused']} of {c['rejected rows']} "
                     f"| {c['rejected texts refused']} of {c['rejected texts']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from attack_workers.attack.protocols import AttackParams

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("records", nargs="+", type=Path, help="reading-record CSVs (docs/results/reading/*.csv)")
    parser.add_argument("--zipf-gaps", default="1.0,1.5,1.6,2.0", help="rarity gaps to evaluate (needs wordfreq)")
    args = parser.parse_args(argv)
    records = load_records(args.records)
    params = AttackParams()
    predicates = {**v3_predicates(params.strict_max_collocation_words, params.strict_sense_candidates),
                  **rarity_predicates([float(g) for g in args.zipf_gaps.split(",") if g])}
    strict = [r for r in records if r.protocol == "strict"]
    print(f"## strict records ({len(strict)} rows)\n\n{table(strict, predicates)}\n")
    print(f"## all records ({len(records)} rows: {', '.join(sorted({r.protocol for r in records}))})\n\n"
          f"{table(records, predicates)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
