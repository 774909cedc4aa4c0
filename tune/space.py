"""The search space: YAML distributions -> Tune domains, and sampled values -> a validated TrainConfig.

A sweep YAML's ``search`` block maps a dotted ``TrainConfig`` key to one distribution::

    vda.sigma: {grid: [1.0e-3, 4.0e-3, 1.0e-2, 4.0e-2]}   # every value (grid searcher only)
    vda.lam:   {choice: [0.04, 0.1, 0.4, 1.0, 4.0]}      # one value per trial, sampled
    lr:        {loguniform: [1.0e-5, 1.0e-4]}
    vda.k:     {randint: [1, 6]}                          # 1..5: the upper bound is excluded, as in Tune

and ``variants`` names sets of dotted overrides (training methods, ablations), searched as one
more parameter, ``variant``. Tune sees only these sampled values; the ``fixed`` block travels
through ``tune.with_parameters``. Every trial's values go through ``vda.config.config_from_dict``
before training, so a bad sample fails in seconds, naming the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from vda.config import TrainConfig, config_from_dict
from vda.dotted import merge, nest

VARIANT_KEY = "variant"  # the Tune parameter that carries a variant's name
DISTRIBUTIONS = ("grid", "choice", "uniform", "loguniform", "randint")


@dataclass(frozen=True)
class Distribution:
    kind: str  # one of DISTRIBUTIONS
    values: tuple[Any, ...]  # grid/choice: the values; uniform/loguniform/randint: (low, high)

    @classmethod
    def parse(cls, key: str, raw: Any, problems: list[str]) -> "Distribution | None":
        """Read ``{kind: [...]}``; append a problem (naming ``search.<key>``) and return None if malformed."""
        where = f"search.{key}"
        if not isinstance(raw, Mapping) or len(raw) != 1:
            problems.append(f"{where}: {raw!r} is not a distribution; write one of "
                            + ", ".join(f"{{{d}: [...]}}" for d in DISTRIBUTIONS)
                            + " (a constant belongs in the fixed block)")
            return None
        (kind, values), = raw.items()
        if kind not in DISTRIBUTIONS:
            problems.append(f"{where}: distribution {kind!r} is unknown; known: {', '.join(DISTRIBUTIONS)}")
            return None
        if not isinstance(values, (list, tuple)) or not values:
            problems.append(f"{where}: {kind} needs a non-empty list, got {values!r}")
            return None
        dist = cls(kind, tuple(values))
        problem = dist._range_problem()
        if problem:
            problems.append(f"{where}: {problem}")
            return None
        return dist

    def _range_problem(self) -> str:
        if self.kind in ("grid", "choice"):
            return ""
        if len(self.values) != 2 or not all(_is_number(v) for v in self.values):
            return f"{self.kind} needs [low, high] numbers, got {list(self.values)}"
        low, high = self.values
        if not low < high:
            return f"{self.kind} [{low}, {high}]: low must be below high"
        if self.kind == "loguniform" and low <= 0:
            return f"loguniform [{low}, {high}]: bounds must be > 0 (use uniform for ranges that include 0)"
        if self.kind == "randint" and not all(float(v).is_integer() for v in self.values):
            return f"randint [{low}, {high}]: bounds must be integers"
        return ""

    def candidates(self) -> list[Any]:
        """Values that can be sampled and that validation checks: all listed ones, or a range's ends."""
        if self.kind in ("grid", "choice"):
            return list(self.values)
        low, high = self.values
        return [int(low), int(high) - 1] if self.kind == "randint" else [low, high]

    def to_tune(self) -> Any:
        from ray import tune

        if self.kind == "grid":
            return tune.grid_search(list(self.values))
        if self.kind == "choice":
            return tune.choice(list(self.values))
        low, high = self.values
        if self.kind == "randint":
            return tune.randint(int(low), int(high))
        return (tune.loguniform if self.kind == "loguniform" else tune.uniform)(float(low), float(high))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def train_config(fixed: Mapping[str, Any], overrides: Mapping[str, Any], source: str) -> TrainConfig:
    """``fixed`` plus dotted ``overrides``, validated by ``vda.config`` (raises its ``ConfigError``)."""
    return config_from_dict(merge(fixed, nest(overrides)), source)


def trial_overrides(sampled: Mapping[str, Any], variants: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The dotted overrides of one trial: its variant's (if any) plus its sampled values."""
    values = dict(sampled)
    name = values.pop(VARIANT_KEY, None)
    return {**(variants[name] if name is not None else {}), **values}


def param_space(search: Mapping[str, Distribution], variants: Mapping[str, Any], searcher: str) -> dict[str, Any]:
    """Tune's ``param_space``: dotted keys to domains, plus ``variant`` over the variant names."""
    space = {key: dist.to_tune() for key, dist in search.items()}
    if variants:
        kind = "grid" if searcher == "grid" else "choice"
        space[VARIANT_KEY] = Distribution(kind, tuple(variants)).to_tune()
    return space
