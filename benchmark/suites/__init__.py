"""The suites of `vidcap-bench run`, in the order `--suite all` runs them.

Each suite module has `NAME`, `TITLE`, `plan(ctx) -> list[RunSpec]` (the training runs it needs, for
the progress display) and `run(ctx) -> SuiteResult`. Runs are shared between suites through their
key: S2VT-LSTM seed 0 is one run whether cells, attention or temporal asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from benchmark.runner import RunSpec
from benchmark.suites import (
    attention,
    backbone,
    beam,
    cells,
    data,
    gradients,
    length,
    perception,
    seeds,
    temporal,
)
from benchmark.suites.context import BenchContext
from benchmark.suites.results import SuiteResult


@dataclass(frozen=True)
class Suite:
    name: str
    title: str
    plan: Callable[[BenchContext], list[RunSpec]]
    run: Callable[[BenchContext], SuiteResult]


SUITES: dict[str, Suite] = {
    module.NAME: Suite(module.NAME, module.TITLE, module.plan, module.run)
    for module in (perception, cells, attention, data, temporal, gradients, backbone, length, seeds, beam)
}
SUITE_NAMES: tuple[str, ...] = tuple(SUITES)
