"""Ray's private internals and version quirks, each behind one small function, and how this project starts Ray.

Ray has no public way to find the cluster that ``ray start`` left on this machine without joining
it (``read_ray_address``), and since 2.52 a bare ``ray.init()`` of a private instance writes
``~/.ray/auth_token`` and warns (``connect_ray`` opts out). Both the attack evaluation and the
sweep start Ray through ``connect_ray``; nothing else in the project touches Ray's private
modules. The internals of Ray *Tune* that only the sweep reads are in ``tune/ray_compat.py``, which
shares this module's ``RayCompatError`` and ``TESTED_RAY`` (this package may not import ``tune``).
``tests/attack_workers/runtime/test_ray_compat.py`` and ``tests/tune/test_ray_compat.py`` exercise each
internal against the installed Ray, so an upgrade that moves one fails there with a
``RayCompatError`` naming it. pyproject.toml bounds Ray to the versions those tests passed on.
"""

from __future__ import annotations

import os
from typing import Any

TESTED_RAY = "2.60"  # the ray releases tests/*/test_ray_compat.py passed on


class RayCompatError(RuntimeError):
    """A Ray internal this project reads has moved; the message names it and the fix."""


def moved(what: str, exc: Exception, module: str = "attack_workers/runtime/ray_compat.py") -> RayCompatError:
    """The error for a Ray internal ``what`` that the installed Ray lacks; ``module`` is the file to port."""
    import ray

    return RayCompatError(f"ray {ray.__version__} no longer has {what} ({type(exc).__name__}: {exc}); this "
                          f"project was tested with ray {TESTED_RAY}.x: install it (pip install "
                          f"'ray[tune]=={TESTED_RAY}.*') or port {module} to this version")


def read_ray_address() -> str | None:
    """The address of the cluster ``ray start`` left on this machine (what a bare ``ray.init()`` joins), or None."""
    try:
        from ray._private.utils import read_ray_address as read
    except ImportError as exc:
        raise moved("ray._private.utils.read_ray_address", exc) from None
    return read() or None


def connect_ray(address: str | None, local_runtime_env: dict[str, Any] | None = None) -> bool:
    """Join ``address``, ``RAY_ADDRESS`` or the cluster ``ray start`` left on this machine; else start a
    private local instance (with ``local_runtime_env``). True when local.

    A private instance runs without token authentication: Ray >= 2.52 would write
    ``~/.ray/auth_token`` and warn about it. A cluster's own auth mode is left alone.
    """
    import ray

    target = address or os.environ.get("RAY_ADDRESS") or read_ray_address()
    if target:
        ray.init(address=target, include_dashboard=False)
        return False
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(address="local", include_dashboard=False, runtime_env=local_runtime_env)
    return True
