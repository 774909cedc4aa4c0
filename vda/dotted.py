"""Dotted keys (``vda.sigma``) over nested dicts: the one implementation every config layer uses.

YAML files, ``key=value`` overrides, sweep search spaces, variants and the checkpoint manifest all
name a setting by the same dotted key; converting between that and nested mappings in one place
keeps them from drifting apart (a copy that treats an empty section differently would make a
sweep resume refuse its own configuration).
"""

from __future__ import annotations

from typing import Any, Mapping


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"vda": {"sigma": 0.1}}`` -> ``{"vda.sigma": 0.1}`` (keys prefixed with ``prefix``); lists stay values."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def nest(dotted: Mapping[str, Any]) -> dict[str, Any]:
    """``{"vda.sigma": 0.1}`` -> ``{"vda": {"sigma": 0.1}}``; ValueError when a key is both a value and a section."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        out = assign(out, key, value)
    return out


def assign(tree: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``tree`` with dotted ``key`` set to ``value``; ``tree`` itself is not modified.

    Raises ValueError when a section on the path already holds a plain value: silently replacing
    it would drop that value.
    """
    head, _, rest = key.partition(".")
    if not rest:
        return {**tree, head: value}
    child = tree.get(head, {})
    if not isinstance(child, Mapping):
        raise ValueError(f"{head!r} is a value ({child!r}), not a section")
    return {**tree, head: assign(child, rest, value)}


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: ``update``'s leaves replace ``base``'s; neither input is modified."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def lookup(tree: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """The value at dotted ``key``, or ``default`` when any part of the path is missing."""
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node
