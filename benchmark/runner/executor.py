"""`Executor`: trains the runs a suite needs that the store does not hold yet, parents before their
fine-tunes, one at a time in this process or `jobs` at a time in spawned worker processes."""

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
from benchmark.runner.store import RunStore
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
    seen: dict[str, tuple[RunSpec, RunRecord]] = field(default_factory=dict)  # every run this invocation used
    tally: dict[str, list[int]] = field(default_factory=dict)  # suite -> [trained now, reused]

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
            records.update(self.train_wave(suite, wave))
        counts = self.tally.setdefault(suite, [0, 0])
        counts[0] += len(pending)
        counts[1] += len(unique) - len(pending)
        for key, spec in unique.items():
            self.seen[key] = (spec, records[key])
        return records

    def resumable(self, spec: RunSpec) -> bool:
        return (self.store.dir(spec) / "train" / "last.pt").is_file()

    def train_wave(self, suite: str, wave: Sequence[RunSpec]) -> dict[str, RunRecord]:
        """Train runs none of which is another's parent, by key: here one at a time, or `jobs` at a time in
        worker processes. Another executor (ray_executor.RayExecutor) overrides this and `close`."""
        if self.jobs > 1 and len(wave) > 1:
            return self._parallel(suite, wave)
        records: dict[str, RunRecord] = {}
        for spec in wave:
            self.progress.started_run(suite, spec, resumed=self.resumable(spec))
            records[spec.key] = self.store.train(spec, progress=self.train_progress)
            self.counted.add(spec.key)
            self.progress.finished_run(suite, records[spec.key])
        return records

    def close(self) -> None:
        """Release what the executor holds once the invocation is over (nothing here)."""

    def _parallel(self, suite: str, pending: Sequence[RunSpec]) -> dict[str, RunRecord]:
        records: dict[str, RunRecord] = {}
        context = get_context("spawn")  # fresh interpreters: no torch thread pools inherited by fork
        # workers watch this process's lifeline (vidcap_core.processes), whichever thread spawns them
        with ProcessPoolExecutor(max_workers=self.jobs, mp_context=context, initializer=die_with_parent,
                                 initargs=(lifeline(),)) as pool:
            futures = {}
            for spec in pending:
                self.progress.queued(suite, spec, resumed=self.resumable(spec))
                futures[pool.submit(train_in_worker, self.store.root, spec)] = spec
            for future in as_completed(futures):
                record = future.result()
                records[record.key] = record
                self.counted.add(record.key)
                self.progress.finished_run(suite, record)
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


def train_in_worker(store_root: Path, spec: RunSpec) -> RunRecord:
    """Process-pool entry point: one run on BENCH_TORCH_THREADS torch threads."""
    return RunStore(store_root).train(spec, progress=False)
