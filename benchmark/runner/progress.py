"""The progress display of a `vidcap-bench run`: one line per run, with elapsed time and an estimate of what is left."""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

from benchmark.runner.records import RunRecord
from benchmark.runner.spec import RunSpec


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class ProgressDisplay:
    """One line per run: which run, i/n over the whole invocation, elapsed, and an estimate of what is left.

    `total` counts the invocation's distinct runs, `to_train` those not finished before it started;
    the estimate is the mean time of the runs trained so far times the runs still to train.
    """

    def __init__(self, total: int, to_train: int, jobs: int = 1, stream: TextIO | None = None) -> None:
        self.total = total
        self.to_train = to_train
        self.jobs = jobs
        self.done = 0
        self.trained = 0
        self.trained_seconds = 0.0
        self.started = time.perf_counter()
        self.stream = stream

    def plan_more(self, runs: int, to_train: int) -> None:
        """Count runs a suite adds once it has results (the beam suite's chosen configuration's claim
        seeds), so i/n and the estimate cover them too."""
        self.total += runs
        self.to_train += to_train

    def say(self, text: str) -> None:
        print(text, file=self.stream or sys.stderr, flush=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self) -> str:
        pending = max(self.to_train - self.trained, 0)
        if pending == 0:
            return "nothing"
        if self.trained == 0:
            return f"{pending} run(s)"
        estimate = self.trained_seconds / self.trained * pending / self.jobs
        return f"{pending} run(s), ~{format_duration(estimate)}"

    def skipped(self, suite: str, spec: RunSpec) -> None:
        self.done += 1
        self.say(f"[{self.done:>3}/{self.total}] {suite:<10} {spec.title:<26} finished earlier: skipped")

    def started_run(self, suite: str, spec: RunSpec, resumed: bool) -> None:
        what = "resuming" if resumed else "training"
        self.say(f"[{self.done + 1:>3}/{self.total}] {suite:<10} {spec.title:<26} {what} ... "
                 f"(elapsed {format_duration(self.elapsed())}, left {self.left()})")

    def queued(self, suite: str, spec: RunSpec, resumed: bool) -> None:
        what = "resume" if resumed else "train"
        self.say(f"[  -/{self.total}] {suite:<10} {spec.title:<26} queued to {what} ({self.jobs} at a time)")

    def finished_run(self, suite: str, record: RunRecord) -> None:
        self.done += 1
        self.trained += 1
        self.trained_seconds += record.wall_seconds
        best = record.result.get("best_val") or {}
        scores = ", ".join(f"{name} {best[name]:.3f}" for name in ("exact", "CIDEr") if best.get(name) is not None)
        status = "diverged" if record.diverged else f"best val {scores}" if scores else "no validation"
        status += ", converged" if record.converged else f", not converged ({record.convergence.get('reason', '?')})"
        title = f"{record.label} seed {record.seed}"
        self.say(f"[{self.done:>3}/{self.total}] {suite:<10} {title:<26} done in {format_duration(record.wall_seconds)}, "
                 f"{status} | elapsed {format_duration(self.elapsed())} | left {self.left()}")
