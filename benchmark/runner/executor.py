"""`Executor`: trains the runs a suite needs that the store does not hold yet, parents before their
fine-tunes, one at a time in this process or `jobs` at a time in spawned worker processes.

`train_ahead` trains every run an invocation planned, across suites, before the first suite runs: one
pool, longest budget first (`training_order`), so no worker waits at the end of a suite while the
other finishes its last run. The suites then find their runs in the store; each run trained this
invocation is counted for the first suite that needs it (`tally`), as when the suites train their own."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from benchmark.prepare import PrepLog, ensure_features
from benchmark.runner.progress import ProgressDisplay
from benchmark.runner.records import RunRecord
from benchmark.runner.spec import RunSpec
from benchmark.runner.store import RunStore, count_pending
from vidcap_core.errors import ConfigError
from vidcap_core.processes import die_with_parent, lifeline


@dataclass
class Executor:
    """Runs the pending specs of a suite, `jobs` at a time (separate processes), each on BENCH_TORCH_THREADS."""

    store: RunStore
    progress: ProgressDisplay
    jobs: int = 1
    prep: PrepLog = field(default_factory=PrepLog)
    seeds: tuple[int, ...] = (0,)
    train_progress: bool = False
    counted: set[str] = field(default_factory=set)  # keys already shown on the progress display
    planned: set[str] = field(default_factory=set)  # keys the progress display's total counts
    seen: dict[str, tuple[RunSpec, RunRecord]] = field(default_factory=dict)  # every run this invocation used
    tally: dict[str, list[int]] = field(default_factory=dict)  # suite -> [trained now, reused]
    trained: set[str] = field(default_factory=set)  # keys trained in this invocation
    credited: set[str] = field(default_factory=set)  # trained keys already counted for a suite

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise ConfigError(f"--jobs {self.jobs} must be at least 1.")

    def ensure(self, suite: str, specs: Sequence[RunSpec]) -> dict[str, RunRecord]:
        """Every spec trained (or loaded), by key. A fine-tune's parent is ensured before it (in the
        same call when it is one of `specs`, counted for this suite either way)."""
        unique: dict[str, RunSpec] = {}
        for spec in specs:
            unique.setdefault(spec.key, spec)
        parents = {s.stage.parent.key: s.stage.parent for s in unique.values() if s.stage is not None}
        records: dict[str, RunRecord] = {}
        missing = [parent for key, parent in parents.items() if key not in unique]
        if missing:
            records.update(self.ensure(suite, missing))
        self.count_unplanned([spec for key, spec in unique.items() if key not in self.planned])
        pending: list[RunSpec] = []
        for key, spec in unique.items():
            if self.store.is_finished(spec):
                records[key] = self.store.load(spec)
                if key not in self.counted:
                    self.counted.add(key)
                    self.progress.skipped(suite, spec)
            else:
                pending.append(spec)
        for source in {spec.features.dir: spec.features for spec in pending}.values():
            ensure_features(source, seeds=self.seeds, log=self.prep, say=self.progress.say)
        for wave in training_waves(pending):  # parents before their fine-tunes
            records.update(self.train_wave([(suite, spec) for spec in wave]))
        counts = self.tally.setdefault(suite, [0, 0])
        for key, spec in unique.items():
            fresh = key in self.trained and key not in self.credited
            counts[0 if fresh else 1] += 1
            self.credited.update([key] if fresh else [])
            self.seen[key] = (spec, records[key])
        return records

    def count_unplanned(self, specs: Sequence[RunSpec]) -> None:
        """Count runs the plan did not (the beam suite's chosen configuration's claim seeds, known only once
        it has chosen) on the progress display, so its i/n never runs past n."""
        if specs:
            self.planned.update(spec.key for spec in specs)
            self.progress.plan_more(*count_pending(self.store, specs))

    def train_ahead(self, planned: Sequence[tuple[str, RunSpec]]) -> None:
        """Train every (suite, spec) not finished yet in one pool, longest budget first (parents before
        their fine-tunes), before the suites run; they then load them from the store. The progress display's
        total counts these already."""
        self.planned.update(spec.key for _, spec in planned)
        pending: dict[str, tuple[str, RunSpec]] = {}
        for suite, spec in planned:
            if spec.key not in pending and not self.store.is_finished(spec):
                pending[spec.key] = (suite, spec)
        suite_of = {key: suite for key, (suite, _) in pending.items()}
        specs = [spec for _, spec in pending.values()]
        for source in {spec.features.dir: spec.features for spec in specs}.values():
            ensure_features(source, seeds=self.seeds, log=self.prep, say=self.progress.say)
        for wave in training_waves(specs):
            self.train_wave([(suite_of[spec.key], spec) for spec in training_order(wave)])

    def resumable(self, spec: RunSpec) -> bool:
        return (self.store.dir(spec) / "train" / "last.pt").is_file()

    def train_wave(self, wave: Sequence[tuple[str, RunSpec]]) -> dict[str, RunRecord]:
        """Train runs none of which is another's parent, each shown under its suite, by key: here one at a
        time, or `jobs` at a time in worker processes. Another executor (ray_executor.RayExecutor) overrides
        this and `close`."""
        if self.jobs > 1 and len(wave) > 1:
            return self._parallel(wave)
        records: dict[str, RunRecord] = {}
        for suite, spec in wave:
            self.progress.started_run(suite, spec, resumed=self.resumable(spec))
            records[spec.key] = self.store.train(spec, progress=self.train_progress)
            self.done(suite, records[spec.key])
        return records

    def done(self, suite: str, record: RunRecord) -> None:
        """Book a run this invocation trained."""
        self.counted.add(record.key)
        self.trained.add(record.key)
        self.progress.finished_run(suite, record)

    def close(self) -> None:
        """Release what the executor holds once the invocation is over (nothing here)."""

    def _parallel(self, pending: Sequence[tuple[str, RunSpec]]) -> dict[str, RunRecord]:
        records: dict[str, RunRecord] = {}
        context = get_context("spawn")  # fresh interpreters: no torch thread pools inherited by fork
        # workers watch this process's lifeline (vidcap_core.processes), whichever thread spawns them
        with ProcessPoolExecutor(max_workers=self.jobs, mp_context=context, initializer=die_with_parent,
                                 initargs=(lifeline(),)) as pool:
            futures = {}
            for suite, spec in pending:  # submitted in order: the pool starts them in that order
                self.progress.queued(suite, spec, resumed=self.resumable(spec))
                futures[pool.submit(train_in_worker, self.store.root, spec)] = suite
            for future in as_completed(futures):
                record = future.result()
                records[record.key] = record
                self.done(futures[future], record)
        return records


def training_waves(pending: Sequence[RunSpec]) -> list[list[RunSpec]]:
    """`pending` in waves: a spec goes in the first wave after its parent's (runs from scratch first)."""
    left = list(pending)
    waves: list[list[RunSpec]] = []
    while left:
        waiting = {spec.key for spec in left}
        wave = [s for s in left if s.stage is None or s.stage.parent.key not in waiting]
        waves.append(wave)
        left = [s for s in left if s not in wave]
    return waves


def training_order(wave: Sequence[RunSpec]) -> list[RunSpec]:
    """The runs of a wave longest step budget first (plan order among equals): started in this order on
    the first free worker, the long runs do not end up alone at the end."""
    return sorted(wave, key=lambda spec: -spec.config.max_steps)


def train_in_worker(store_root: Path, spec: RunSpec) -> RunRecord:
    """Process-pool entry point: one run on BENCH_TORCH_THREADS torch threads."""
    return RunStore(store_root).train(spec, progress=False)
