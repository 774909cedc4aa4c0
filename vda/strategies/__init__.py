"""Training strategies, one module each, and the ``STRATEGIES`` registry (paper Tables 2-3).

A strategy is ``step(model, batch, ctx) -> logs``: it runs its forward passes, calls
``ctx.backward`` on its loss (gradients accumulate; the trainer then clips and steps the
optimizer) and returns the logged loss parts, ``loss`` included. When ``ctx.vda`` is set the
strategy adds ``lambda * L_reg`` from ``ctx.vda``: "FreeLB + VDA" is ``strategy.name: freelb``
with ``vda.lam > 0``, not a separate strategy.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable

import torch

from vda.objective import StepContext
from vda.strategies.freelb import freelb_step
from vda.strategies.plain import plain_step
from vda.strategies.smart import smart_step
from vda.strategies.smix import smix_step

Step = Callable[[Any, dict[str, torch.Tensor], StepContext], dict[str, float]]

STRATEGIES: dict[str, Step] = {"plain": plain_step, "freelb": freelb_step, "smart": smart_step, "smix": smix_step}


def get_strategy(name: str) -> Step:
    if name not in STRATEGIES:
        close = difflib.get_close_matches(name, STRATEGIES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise KeyError(f"STRATEGIES has no {name!r}; {hint}known: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]
