"""The timing harness of `vidcap-bench perf`: a `Timing` (median and spread over repeats), the results
a run collects, and the ways contenders are timed (alone, two side by side, several taking turns)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.prepare import DEFAULT_CACHE


@dataclass
class PerfOptions:
    out: Path = Path("results")
    repeats: int = 5
    cache: Path = DEFAULT_CACHE
    checkpoint: Path | None = None  # a trained model for latency (default: <out>/best/model.pt if present)


@dataclass
class Timing:
    """Median and spread of one measurement, in seconds per repeat."""

    name: str
    seconds: list[float]
    units: float  # work per repeat (frames, clips)
    unit: str

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def per_second(self) -> float:
        return self.units / self.median if self.median > 0 else float("inf")

    @property
    def ms_per_unit(self) -> float:
        return 1000.0 * self.median / self.units

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "median_s": self.median, "min_s": min(self.seconds), "max_s": max(self.seconds),
                "repeats": len(self.seconds), "units": self.units, "unit": self.unit,
                "per_second": self.per_second, "ms_per_unit": self.ms_per_unit}


@dataclass
class PerfResults:
    sections: dict[str, list[Timing]] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    e2e: dict[str, float] = field(default_factory=dict)
    latency: list[dict[str, Any]] = field(default_factory=list)  # rows of the user-facing latency table
    load: dict[str, Any] = field(default_factory=dict)  # load averages before/after, other work, cores, warning


def time_it(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - started)
    return seconds


def side_by_side(a: Callable[[], Any], b: Callable[[], Any], repeats: int) -> tuple[list[float], list[float]]:
    """Alternate a and b in every repeat (after one warm-up each)."""
    a()
    b()
    times_a, times_b = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        a()
        times_a.append(time.perf_counter() - started)
        started = time.perf_counter()
        b()
        times_b.append(time.perf_counter() - started)
    return times_a, times_b


def round_robin(contenders: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Seconds per repeat of each contender, taking turns inside each repeat (order reversed every
    other repeat), after one warm-up each."""
    for fn in contenders.values():
        fn()
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    for r in range(repeats):
        order = list(contenders.items())
        for name, fn in order if r % 2 == 0 else reversed(order):
            started = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - started)
    return seconds


def latency_row(what: str, seconds: list[float], goal: str) -> dict[str, Any]:
    return {"what": what, "min_s": min(seconds), "median_s": statistics.median(seconds), "max_s": max(seconds),
            "repeats": len(seconds), "goal": goal}
