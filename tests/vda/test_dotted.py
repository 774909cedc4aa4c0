"""Dotted keys over nested dicts: the conversions every config layer shares."""

import pytest

from vda.dotted import assign, flatten, lookup, merge, nest


def test_flatten_and_nest_are_inverse():
    tree = {"lr": 1e-4, "vda": {"sigma": 0.5, "k": 2}, "data": {"text_columns": ["a", "b"]}}
    flat = flatten(tree)
    assert flat == {"lr": 1e-4, "vda.sigma": 0.5, "vda.k": 2, "data.text_columns": ["a", "b"]}
    assert nest(flat) == tree
    assert flatten(tree, "config.")["config.vda.k"] == 2


def test_assign_and_merge_leave_their_inputs_alone():
    tree = {"vda": {"k": 1, "lam": 1.0}}
    assigned = assign(tree, "vda.k", 3)
    merged = merge(tree, {"vda": {"lam": 0.0}, "lr": 1e-3})
    assert assigned == {"vda": {"k": 3, "lam": 1.0}} and merged == {"vda": {"k": 1, "lam": 0.0}, "lr": 1e-3}
    assert tree == {"vda": {"k": 1, "lam": 1.0}}


def test_a_value_is_not_silently_turned_into_a_section():
    with pytest.raises(ValueError, match="'vda' is a value"):
        assign({"vda": 3}, "vda.k", 1)
    with pytest.raises(ValueError, match="'vda' is a value"):
        nest({"vda": 3, "vda.k": 1})


def test_lookup_returns_the_default_for_any_missing_part():
    tree = {"data": {"dataset": "mr"}, "lr": 1e-4}
    assert lookup(tree, "data.dataset") == "mr"
    assert lookup(tree, "data.missing") is None and lookup(tree, "lr.deeper", "none") == "none"
