"""The packages import each other in one direction only (issue 29 item 11; docs/attacks.md#modules-and-tests).

Bottom to top: the fine-tuner (``vda``); the results store and its statistics
(``attack_workers.results``); what an attack is (``attack_workers.attack`` with the word resources of
``attack_workers.lexicon``, which it and the audit share); where attacks run
(``attack_workers.runtime``, ``attack_workers.ada``); the sweep (``tune``); every table, plot and page
(``analysis``); the command lines on top (``COMMANDS``: nothing imports them). A module imports its
own layer and the layers below it, never one above, and no chain of imports comes back to where it
started: read from the files' ``import`` statements, those inside functions too, so a lazy import
cannot hide an edge or a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("vda", "attack_workers", "tune", "analysis")
LAYERS: tuple[tuple[str, ...], ...] = (
    ("vda",),
    ("attack_workers.results",),  # data and statistics: imports no attack, runtime, sweep or analysis
    ("attack_workers.attack", "attack_workers.lexicon"),
    ("attack_workers.runtime", "attack_workers.ada"),
    ("tune",),
    ("analysis",),
)
"""Module prefixes, bottom to top."""
COMMANDS = ("attack_workers", "attack_workers.__main__", "attack_workers.cli", "tune.sweep")
"""Above every layer: the command lines (``python -m attack_workers``, ``tune/sweep.py``, which writes the
analysis when a sweep ends) and the package's public names (``attack_workers/__init__.py``)."""


def modules() -> dict[str, Path]:
    """Every module of ``PACKAGES`` by dotted name (a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(module: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(imported module of ``known``, line) for every import statement in ``path``, at any depth."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        resolved = set()
        for name in names:  # ``from a.b import c``: the module a.b.c if there is one, else a.b
            while name and name not in known:
                name = name.rpartition(".")[0]
            resolved.add(name)
        if isinstance(node, ast.ImportFrom) and len(resolved) > 1:
            resolved.discard(node.module)  # the package of modules imported from it
        yield from ((name, node.lineno) for name in sorted(resolved) if name and name != module)


def layer(module: str) -> int:
    """The index in ``LAYERS`` of ``module`` (its longest matching prefix); ``COMMANDS`` are on top."""
    if module in COMMANDS:
        return len(LAYERS)
    matches = [(len(prefix), i) for i, prefixes in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} is in no layer: add it to LAYERS (or COMMANDS) in {Path(__file__).name}"
    return max(matches)[1]


def upward_imports(edges: list[tuple[str, str, str]]) -> list[str]:
    """The ``(module, imported module, where)`` edges that go up a layer, as messages."""
    return [f"{where}: {importer} (layer {layer(importer)}) imports {imported} (layer {layer(imported)})"
            for importer, imported, where in edges if layer(imported) > layer(importer)]


def cycle(edges: list[tuple[str, str, str]]) -> list[str]:
    """One chain of imports that comes back to its start (module, imported, ..., module), or []."""
    graph: dict[str, set[str]] = {}
    for importer, imported, _ in edges:
        graph.setdefault(importer, set()).add(imported)
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str]:
        if module in path:
            return path[path.index(module):] + [module]
        if module in done:
            return []
        for imported in sorted(graph.get(module, ())):
            found = visit(imported, path + [module])
            if found:
                return found
        done.add(module)
        return []

    return next((found for module in sorted(graph) if (found := visit(module, []))), [])


def project_edges() -> list[tuple[str, str, str]]:
    known = modules()
    return [(module, imported, f"{path.relative_to(ROOT)}:{line}")
            for module, path in known.items() for imported, line in imports(module, path, known)]


def test_every_import_goes_down_the_layers():
    edges = project_edges()
    assert len(edges) > 250  # the walk found the imports (about 320 statements import another module of ours)
    assert not upward_imports(edges), "\n".join(upward_imports(edges))


def test_no_import_cycle():
    assert not cycle(project_edges()), " -> ".join(cycle(project_edges()))


def test_the_checks_catch_the_old_layout():
    """Edges of the layout before issue 29 item 11 fail: the store imported the attack package, the
    report and the reader verdicts imported ``tune`` (lazily, each way: cycles), an attack part ``runtime``."""
    old = [("attack_workers.results.store", "attack_workers.attack.protocols", "store"),
           ("attack_workers.results.union", "attack_workers.attack.recipes", "union"),
           ("attack_workers.results.report", "tune.analysis", "report"),
           ("attack_workers.results.verdicts", "tune.reproduce", "verdicts"),
           ("attack_workers.attack.sentence_encoder", "attack_workers.runtime.identity", "encoder"),
           ("tune.study", "tune.sweep", "study"),
           ("tune.analysis", "attack_workers.results.report", "analysis"),
           ("tune.sweep", "analysis.summary", "the sweep, a command line")]
    assert [message.split(":")[0] for message in upward_imports(old)] == ["store", "union", "report", "verdicts",
                                                                          "encoder", "study"]
    assert cycle(old) == ["attack_workers.results.report", "tune.analysis", "attack_workers.results.report"]


def test_the_training_side_and_the_store_load_no_analysis():
    """At run time too: importing the sweep's training side or the store loads no module of ``analysis``."""
    code = ("import sys, tune.config, tune.pipeline, tune.search, tune.space, tune.study, tune.trainable, "
            "attack_workers.results.store; loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'analysis'); "
            "print(loaded); sys.exit(1 if loaded else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
