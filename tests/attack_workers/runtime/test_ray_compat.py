"""The Ray core internals behind ``attack_workers.runtime.ray_compat``, and the one way the project starts Ray (no Ray started).

When one of these fails after a Ray upgrade, the error names the moved internal: port
attack_workers/runtime/ray_compat.py or keep Ray within pyproject's bounds.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from attack_workers.runtime.ray_compat import connect_ray, read_ray_address

ROOT = Path(__file__).resolve().parents[3]
COMPAT_MODULES = {"attack_workers/runtime/ray_compat.py", "tune/ray_compat.py"}


def test_read_ray_address_finds_the_cluster_ray_start_left(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    assert read_ray_address() is None
    (tmp_path / "ray" / "ray_current_cluster").parent.mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("10.0.0.5:6379\n")  # what `ray start --head` writes
    assert read_ray_address() == "10.0.0.5:6379"


def test_a_private_instance_runs_without_token_auth_and_a_cluster_keeps_its_own(tmp_path, monkeypatch):
    import ray

    calls: list[dict] = []
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))  # no `ray start` cluster here
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    assert connect_ray("10.0.0.5:6379", local_runtime_env={"env_vars": {"A": "1"}}) is False
    assert calls[-1] == {"address": "10.0.0.5:6379", "include_dashboard": False}
    assert "RAY_AUTH_MODE" not in os.environ
    assert connect_ray(None, local_runtime_env={"env_vars": {"A": "1"}}) is True
    assert calls[-1] == {"address": "local", "include_dashboard": False, "runtime_env": {"env_vars": {"A": "1"}}}
    assert os.environ["RAY_AUTH_MODE"] == "disabled"


def _project_sources() -> list[Path]:
    return sorted(p for package in ("attack_workers", "tune", "vda") for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("what", ["ray._private", "RAY_AUTH_MODE"])
def test_only_the_compat_modules_touch_rays_internals_and_auth_mode(what):
    """One definition each: a second copy would drift from the one the compat tests check."""
    users = set()
    for path in _project_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            named = (node.module if isinstance(node, ast.ImportFrom) else
                     node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None)
            if named and named.startswith(what):
                users.add(str(path.relative_to(ROOT)))
    assert users <= COMPAT_MODULES, f"{what} outside the compat modules: {sorted(users - COMPAT_MODULES)}"
