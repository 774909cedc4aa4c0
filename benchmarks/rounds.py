"""Ratios that survive a noisy machine: measure the things compared in alternating rounds.

A shared machine drifts by tens of percent over minutes (two runs of ``vda_step.py`` ten minutes
apart once gave a plain step of 560 ms and 709 ms). Timing one configuration after the other puts
that drift into every ratio. Here each round times every configuration once, back to back, the
ratio is taken within the round, and the report is the median ratio over rounds with its min-max.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

MARK = "@@round@@ "  # prefix of a server's reply line; anything else it prints is passed through to stderr


@dataclass(frozen=True)
class Spread:
    """Median and range of one quantity over rounds."""

    median: float
    low: float
    high: float
    rounds: int

    def text(self, digits: int = 2, unit: str = "x") -> str:
        return f"{self.median:.{digits}f}{unit} ({self.low:.{digits}f}-{self.high:.{digits}f})"


def spread(values: Sequence[float]) -> Spread:
    return Spread(statistics.median(values), min(values), max(values), len(values))


def ratio_spread(numerators: Sequence[float], denominators: Sequence[float]) -> Spread:
    """The per-round ratios ``numerators[r] / denominators[r]``, summarised."""
    if len(numerators) != len(denominators) or not numerators:
        raise ValueError("a ratio needs the same, non-zero number of rounds on both sides")
    return spread([n / d for n, d in zip(numerators, denominators)])


def alternate(measures: dict[str, Callable[[], float]], rounds: int,
              report: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, list[float]]:
    """Run every measure once per round, in the given order, ``rounds`` times: {name: [value per round]}."""
    values: dict[str, list[float]] = {name: [] for name in measures}
    for r in range(rounds):
        now = {name: measure() for name, measure in measures.items()}
        for name, value in now.items():
            values[name].append(value)
        if report:
            report(r, now)
    return values


class Server:
    """A subprocess that answers one JSON line per request line, so a configuration's process stays alive
    (its models loaded and warm, its peak memory its own) while others are measured between its rounds."""

    def __init__(self, command: list[str]) -> None:
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                         bufsize=1)
        self.hello = self._reply()  # the server says it is ready (models loaded) before the first request

    def request(self, line: str) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()
        return self._reply()

    def close(self) -> None:
        if self._process.poll() is None:
            self.request("quit")
        self._process.wait(timeout=60)

    def _reply(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK):])
            sys.stderr.write(line)
        raise RuntimeError(f"benchmark server {self._process.args} exited with {self._process.wait()} "
                           "before answering (its error is above)")

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(handlers: dict[str, Callable[[list[str]], dict[str, Any]]], hello: dict[str, Any]) -> None:
    """The server side: answer ``<command> [args...]`` lines from stdin until ``quit``."""
    answer(hello)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "quit":
            answer({})
            return
        answer(handlers[command](args))


def answer(payload: dict[str, Any]) -> None:
    print(MARK + json.dumps(payload), flush=True)
