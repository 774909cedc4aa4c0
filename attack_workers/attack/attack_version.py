"""The attack-code version: part of every attack key, so rows of changed attack code are never reused.

Why: the store reuses a row whenever its attack key matches (resume, ``--num-examples`` growth, the
sweep's pipeline, calibration scripts). The key names the protocol, its parameters, the models,
the lexicon and the data, but a rule that decides what an attack accepts (the swap rules, the
stop words, the search, the constraints) lives in code: changing one would silently mix rows of
the old and the new attack. So the key also carries ``ATTACK_CODE_VERSION`` and the installed
TextAttack version (``attack_code_identity``).

A version is only as good as its bumps. ``RULE_SOURCES`` names the code that decides what an
attack accepts; ``attack_code.json`` (next to this file) records the version and a fingerprint of
those sources, and ``tests/attack_workers/attack/test_attack_version.py`` fails when the sources changed
and the version did not. After changing a rule::

    # bump ATTACK_CODE_VERSION below, then
    python -m attack_workers.attack.attack_version --update
    # or, for a change that keeps every attack's outcome (a comment, a docstring, a moved import):
    python -m attack_workers.attack.attack_version --update --same-behaviour

The sources are read from their files, not imported: checking costs no TextAttack import.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.util
import json
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

ATTACK_CODE_VERSION = 2
"""Bump on any change to what an attack accepts or how it counts; never reuse a number."""

RULE_SOURCES: tuple[str, ...] = (
    # "module" fingerprints the whole file; "module:name" one top-level function, class or assignment.
    "attack_workers.attack.transformation",  # the candidates: BertAttackWordSwap, _allowed_swap, NEGATIONS, ...
    "attack_workers.attack.search",  # which candidate wins and what its queries cost
    "attack_workers.attack.constraints",  # the column and stop-word constraints
    "attack_workers.lexicon.stopwords",  # the words no attack may touch
    "attack_workers.attack.textattack_compat",  # the word-importance order and query refunds
    "attack_workers.attack.sentence_encoder:LocalSentenceEncoder",  # the textattack protocol's text similarity
    "attack_workers.attack.protocols:Rules",  # the constraints every attack shares under a protocol
    "attack_workers.attack.protocols:textattack_rules",
    "attack_workers.attack.protocols:vda_paper_rules",
    "attack_workers.attack.protocols:strict_rules",
    "attack_workers.attack.recipes",  # bert-attack, textfooler and pwws: candidates, recipe constraints, search
    "attack_workers.attack.word_swaps",  # textfooler's and pwws's candidates, textfooler's part-of-speech check
    "attack_workers.attack.strict",  # the strict protocol's re-inflection, meaning and tag rules
    "attack_workers.lexicon.tagger",  # the tags in context strict compares
    "attack_workers.lexicon.words",  # what one whole word is: which MLM candidates a word swap may propose
    "attack_workers.lexicon.relations:is_english_word",  # which sub-token combinations are words
    "attack_workers.lexicon.relations:wordnet_lemmas",
    "attack_workers.lexicon.relations:single_word",
)
RECORD = Path(__file__).with_name("attack_code.json")
UPDATE = "python -m attack_workers.attack.attack_version --update"


def attack_code_identity() -> dict[str, Any]:
    """The attack key's fields that name the attack code: this version and the installed TextAttack's."""
    return {"attack_code": ATTACK_CODE_VERSION, "textattack": metadata.version("textattack")}


def rule_source(entry: str) -> str:
    """The source text of one ``RULE_SOURCES`` entry ("module" or "module:name"), read from its file."""
    module, _, name = entry.partition(":")
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise LookupError(f"RULE_SOURCES entry {entry!r}: no module {module!r}; update attack_version.RULE_SOURCES")
    source = Path(spec.origin).read_text(encoding="utf-8")
    if not name:
        return source
    lines = source.splitlines(keepends=True)
    for node in ast.parse(source).body:
        if name in _defined_names(node):
            start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            return "".join(lines[start - 1:node.end_lineno])
    raise LookupError(f"RULE_SOURCES entry {entry!r}: {module} defines no top-level {name!r}; "
                      "update attack_version.RULE_SOURCES")


def _defined_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def rule_fingerprint(sources: Sequence[str] = RULE_SOURCES) -> str:
    """SHA-256 over the sources' texts (not their names: moving a rule unchanged keeps the fingerprint)."""
    h = hashlib.sha256()
    for entry in sources:
        h.update(rule_source(entry).encode())
        h.update(b"\0")
    return h.hexdigest()


def check(sources: Sequence[str] = RULE_SOURCES, record: Path = RECORD,
          version: int = ATTACK_CODE_VERSION) -> str | None:
    """Why ``record`` does not match the rule sources and ``version``, or None when it does."""
    recorded = json.loads(record.read_text())
    if version < recorded["version"]:
        return (f"ATTACK_CODE_VERSION is {version}, below the recorded {recorded['version']}: versions only go up "
                f"(an old number would match the keys of old rows); set it above and run `{UPDATE}`")
    if rule_fingerprint(sources) != recorded["fingerprint"] and version == recorded["version"]:
        return ("the source of a rule that decides what an attack accepts changed (attack_version.RULE_SOURCES) "
                f"and ATTACK_CODE_VERSION did not: bump ATTACK_CODE_VERSION and run `{UPDATE}`, so that rows of "
                f"the old code are not reused; if the change keeps every attack's outcome (a comment, a "
                f"docstring, a moved import), run `{UPDATE} --same-behaviour` instead")
    if version != recorded["version"]:
        return f"ATTACK_CODE_VERSION is {version} but {record.name} records {recorded['version']}: run `{UPDATE}`"
    return None


def update(sources: Sequence[str] = RULE_SOURCES, record: Path = RECORD, version: int = ATTACK_CODE_VERSION,
           same_behaviour: bool = False) -> dict[str, Any]:
    """Record ``version`` and the sources' fingerprint; refuses changed sources under an unchanged version
    unless ``same_behaviour`` says the change keeps every outcome."""
    recorded = json.loads(record.read_text())
    fingerprint = rule_fingerprint(sources)
    if version < recorded["version"]:
        raise ValueError(f"ATTACK_CODE_VERSION {version} is below the recorded {recorded['version']}: "
                         "versions only go up")
    if fingerprint != recorded["fingerprint"] and version == recorded["version"] and not same_behaviour:
        raise ValueError(f"the rule sources changed: bump ATTACK_CODE_VERSION (now {version}) first, or pass "
                         "--same-behaviour if the change keeps every attack's outcome")
    new = {"version": version, "fingerprint": fingerprint}
    record.write_text(json.dumps(new, indent=2) + "\n")
    return new


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attack_workers.attack.attack_version",
                                     description="check or record the attack-code version and rule fingerprint")
    parser.add_argument("--update", action="store_true", help=f"record ATTACK_CODE_VERSION and the fingerprint "
                                                                  f"in {RECORD.name}")
    parser.add_argument("--same-behaviour", action="store_true",
                        help="with --update: the sources changed but no attack's outcome did (no bump needed)")
    args = parser.parse_args(argv)
    if args.update:
        try:
            print(json.dumps(update(same_behaviour=args.same_behaviour)))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    problem = check()
    print(problem or f"attack code version {ATTACK_CODE_VERSION}: {RECORD.name} is up to date")
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main())
