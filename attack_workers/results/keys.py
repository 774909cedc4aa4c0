"""Names and keys that the stored rows share with the attack package that writes them.

The store builds union rows and sorts attacks when it reads (``union``, ``store``), and the attack
package writes the rows those reads group. Both take these definitions from here, so the store
needs nothing of ``attack_workers.attack`` (docs/attacks.md#modules-and-tests):

- ``UNION``: the ``attack`` of a union row; no recipe may take this name.
- ``ATTACK_ORDER``: the recipes of ``attack_workers.attack.recipes.ATTACKS``, in its order
  (``tests/attack_workers/attack/test_recipes.py`` checks that they agree). Tables and the union's
  choice of example sort attacks by it (``attack_rank``).
- ``key_hash``: the hash of every key, ``protocols.attack_key`` and ``protocols.union_key`` too.
- ``union_row_key``: the attack key of a union row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

UNION = "union"
ATTACK_ORDER = ("bert-attack", "textfooler", "pwws")


def attack_rank(name: str) -> int:
    """Where ``name`` sorts in tables and union choices: the registry's order, then unknown names, then the union."""
    return ATTACK_ORDER.index(name) if name in ATTACK_ORDER else len(ATTACK_ORDER) + (name == UNION)


def key_hash(payload: dict[str, Any]) -> str:
    """16 hex digits of SHA-256 over ``payload`` as sorted JSON."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def union_row_key(union: str, attacks: Iterable[str]) -> str:
    """The attack key of a union row: its attacks' ``union_key`` and the set of attacks it combines.

    Why the set: a checkpoint attacked by BERT-Attack + TextFooler and one attacked by all three
    share the union key, but their unions are two measurements (the worst case over two attacks is
    weaker than over three). Keyed apart, they are never averaged into one row nor paired into one Δ.
    """
    return key_hash({"union_key": union, "attacks": sorted(set(attacks))})
