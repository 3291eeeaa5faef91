"""Training runs keyed by their full configuration: skip what is finished, resume what was cut short.

Layout of `<cache>/runs/<key>/`:
  spec.json        what the key hashes (train config without paths, data + feature identity, the numerics
                   versions of the stages a run uses, torch minor version, device kind, thread count) and,
                   for information only, the commit that trained it
  train/           the RUN_DIR given to `vidcap_core.training.train` (resumes from its last.pt)
  result.json      written last, atomically: the run is finished once it exists; "result" is the run's
                   RUN_DIR/summary.json (steps, stop reason, best validation, convergence verdict)
  evals/<name>.json  one `evaluate_run` report (with per-video scores) per split / beam / frame order,
                   recomputed when the numerics versions of decoding or evaluation it records are not current

A fine-tune stage (SCST, LSTM-GAN: `FinetuneStage`) is a run like any other whose spec names its
parent run: the parent's key is part of the child's key, the parent is trained first (or taken from
the cache), and the child runs `training.policy_gradient.finetune` from the parent's best.pt into its
own `train/` (resumed from its last.pt). A parent that did not converge is still fine-tuned; the
child's result.json records the parent's key, label and convergence ("parent"), and its suite rows
show it (`parent_converged`).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TextIO

from benchmark.identity import BENCH_SCHEMA, BENCH_TORCH_THREADS, compute_key_material, describe_commit, stable_hash
from benchmark.prepare import FeatureSource, PrepLog, ensure_features
from vidcap_core.errors import ConfigError
from vidcap_core.files import read_jsonl, write_json
from vidcap_core.numerics import EVALUATION_STAGES, FINETUNE_STAGES, RUN_STAGES, versions
from vidcap_core.processes import die_with_parent, lifeline
from vidcap_core.training.config import TrainConfig

# TrainConfig fields the key replaces: paths by data identity; the thread count and device by what the run
# really uses (BENCH_TORCH_THREADS, the device kind "auto" resolves to), in compute_key_material.
NOT_IN_KEY = frozenset({"root", "features", "annotations", "torch_threads", "device"})


@dataclass(frozen=True)
class FinetuneStage:
    """Policy-gradient fine-tuning of the parent run's best.pt (training.policy_gradient.finetune)."""

    parent: RunSpec
    method: str  # "scst" or "adversarial" (FinetuneConfig.method)
    options: tuple[tuple[str, Any], ...] = ()  # other FinetuneConfig fields (reward, mle_weight, d_...), sorted

    def key_material(self) -> dict[str, Any]:
        return {"parent": self.parent.key, "method": self.method, "options": dict(self.options)}


@dataclass(frozen=True)
class RunSpec:
    """One training run: a label for people, the complete TrainConfig, and the features it reads; a
    fine-tune also names its parent run and its method (`stage`), and `config` is then the TrainConfig
    it fine-tunes with (the parent's, with the fine-tune's budget and learning rate)."""

    label: str  # e.g. "s2vt-lstm"; the seed is in config.seed
    config: TrainConfig
    features: FeatureSource
    stage: FinetuneStage | None = None

    def key_material(self) -> dict[str, Any]:
        train = {k: v for k, v in self.config.to_dict().items() if k not in NOT_IN_KEY}
        stages = RUN_STAGES if self.stage is None else FINETUNE_STAGES
        material = {"schema": BENCH_SCHEMA, "train": train, "features": self.features.identity(),
                    **compute_key_material(stages, self.config.device), "torch_threads": BENCH_TORCH_THREADS}
        if self.stage is not None:
            material["finetune"] = self.stage.key_material()
        return material

    @property
    def key(self) -> str:
        return stable_hash(self.key_material())

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def title(self) -> str:
        return f"{self.label} seed {self.seed}"


@dataclass(frozen=True)
class EvalRequest:
    split: str = "test"
    beam: int = 1
    frame_order: str = "ordered"

    @property
    def name(self) -> str:
        return f"{self.split}-beam{self.beam}-{self.frame_order}"


@dataclass
class RunRecord:
    """A finished run as the suites see it."""

    key: str
    label: str
    config: dict[str, Any]
    dir: Path
    result: dict[str, Any]  # TrainResult.summary(): steps_done, best_step, best_val, stop_reason, convergence...
    wall_seconds: float  # this benchmark's time training it (0 for a run finished earlier)
    history: list[dict[str, Any]] = field(default_factory=list)  # log.jsonl rows
    gradients: list[dict[str, Any]] = field(default_factory=list)  # gradients.jsonl rows
    parent: dict[str, Any] | None = None  # a fine-tune's parent run: key, label, converged, convergence reason

    @property
    def train_dir(self) -> Path:
        return self.dir / "train"

    @property
    def best_checkpoint(self) -> Path | None:
        path = self.train_dir / "best.pt"
        return path if path.is_file() else None

    @property
    def seed(self) -> int:
        return int(self.config["seed"])

    @property
    def diverged(self) -> bool:
        return bool(self.result.get("diverged"))

    @property
    def convergence(self) -> dict[str, Any]:
        """The run's convergence verdict (vidcap_core.training.convergence): converged, reason, rule, and its
        training status (added here for runs trained before the loop recorded it)."""
        verdict = dict(self.result.get("convergence") or {})
        if "status" not in verdict:
            from vidcap_core.training.convergence import TRAINED_STATUSES, training_status

            verdict["status"] = training_status({"stop_reason": self.result.get("stop_reason"), **verdict})
            verdict["trained"] = verdict["status"] in TRAINED_STATUSES
        return verdict

    @property
    def trained(self) -> bool:
        """Trained to completion (convergence.training_status): converged, stopped by its schedule, fell off
        its plateau or diverged; False for a run whose budget ran out while it was still improving."""
        return bool(self.convergence.get("trained"))

    @property
    def converged(self) -> bool:
        return bool(self.convergence.get("converged"))

    @property
    def parent_converged(self) -> bool | None:
        """Whether the run this one fine-tuned converged; None for a run trained from scratch."""
        return None if self.parent is None else bool(self.parent.get("converged"))


@dataclass
class EvalRecord:
    """The parts of an EvalReport the suites use."""

    request: EvalRequest
    metrics: dict[str, float]
    semantic: dict[str, float] | None
    per_video: dict[str, dict[str, float]]
    inference_ms_per_clip: float
    n_videos: int
    predictions_file: str
    per_video_semantic: dict[str, dict[str, float]] = field(default_factory=dict)  # SynthClips only

    def predictions(self) -> list[dict[str, Any]]:
        return read_jsonl(Path(self.predictions_file))

    def captions(self) -> dict[str, str]:
        return {row["video_id"]: row["caption"] for row in self.predictions()}

    def references(self) -> dict[str, list[str]]:
        return {row["video_id"]: list(row["references"]) for row in self.predictions()}


class RunStore:
    """Finished and unfinished runs under `<cache>/runs`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def dir(self, spec: RunSpec) -> Path:
        return self.root / spec.key

    def is_finished(self, spec: RunSpec) -> bool:
        return (self.dir(spec) / "result.json").is_file()

    def load(self, spec: RunSpec) -> RunRecord:
        directory = self.dir(spec)
        payload = json.loads((directory / "result.json").read_text(encoding="utf-8"))
        return RunRecord(
            key=spec.key, label=spec.label, config=payload["config"], dir=directory, result=payload["result"],
            wall_seconds=0.0, history=read_jsonl(directory / "train" / "log.jsonl"),
            gradients=read_jsonl(directory / "train" / "gradients.jsonl"), parent=payload.get("parent"),
        )

    def train(self, spec: RunSpec, progress: bool = False) -> RunRecord:
        """Train (or resume) the run and mark it finished; returns its record. A fine-tune trains its
        parent first when the parent is not finished yet. It trains on BENCH_TORCH_THREADS, as its key says."""
        directory = self.dir(spec)
        directory.mkdir(parents=True, exist_ok=True)
        write_json(directory / "spec.json", {"label": spec.label, "key": spec.key, **spec.key_material(),
                                             "commit": describe_commit()})  # the commit: information only
        started = time.perf_counter()
        if spec.stage is None:
            config, summary, parent = *self._train_mle(spec, progress), None
        else:
            config, summary, parent = self._finetune(spec, progress)
        wall = time.perf_counter() - started
        payload = {"label": spec.label, "key": spec.key, "config": config, "result": summary,
                   "wall_seconds": round(wall, 3)}
        if parent is not None:
            payload["parent"] = parent
        write_json(directory / "result.json", payload)
        record = self.load(spec)
        record.wall_seconds = wall
        return record

    def _train_mle(self, spec: RunSpec, progress: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        """vidcap_core.training.train into `train/` (resumed from its last.pt); (the spec's config, summary)."""
        from vidcap_core.training import train

        config = TrainConfig.from_dict({**spec.config.to_dict(), "torch_threads": BENCH_TORCH_THREADS}, source=spec.title)
        result = train(config, self.dir(spec) / "train", resume=True, progress=progress)  # validation needs no Java
        return spec.config.to_dict(), run_summary(result.summary())

    def _finetune(self, spec: RunSpec, progress: bool) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """The parent (trained now if needed), then `finetune` from its best.pt into `train/` (resumed).
        Returns (the resolved fine-tune TrainConfig, its summary, facts about the parent)."""
        from vidcap_core.training.finetune_config import resolve_finetune
        from vidcap_core.training.policy_gradient import finetune, finetune_summary

        assert spec.stage is not None
        parent_spec = spec.stage.parent
        parent = self.load(parent_spec) if self.is_finished(parent_spec) else self.train(parent_spec, progress)
        facts = {"key": parent.key, "label": parent.label, "seed": parent.seed, "converged": parent.converged,
                 "convergence": parent.convergence.get("reason", "no verdict recorded")}
        if parent.best_checkpoint is None:  # diverged before its first validation: recorded, not hidden
            return spec.config.to_dict(), unstarted_summary(parent), facts
        # The parent's run folder gives config.json and best.pt; the spec's config only repeats the parent's model.
        overrides = {**spec.config.to_dict(), "torch_threads": BENCH_TORCH_THREADS}
        cfg, ft = resolve_finetune(parent.train_dir, spec.stage.method, None, overrides, dict(spec.stage.options))
        result = finetune(cfg, ft, self.dir(spec) / "train", resume=True, progress=progress)
        config = {**cfg.to_dict(), "torch_threads": spec.config.torch_threads}  # how it ran is not what it is
        return config, run_summary(finetune_summary(result, ft)), facts

    def evaluate(self, record: RunRecord, request: EvalRequest, scorer: Any) -> EvalRecord | None:
        """Evaluate the run's best checkpoint (cached per request); None when it has none (diverged at once)."""
        if record.best_checkpoint is None:
            return None
        cached = record.dir / "evals" / f"{request.name}.json"
        numerics = versions(EVALUATION_STAGES)
        if not cached.is_file() or json.loads(cached.read_text(encoding="utf-8")).get("numerics") != numerics:
            from vidcap_core.pipeline import evaluate_run

            report = evaluate_run(record.train_dir, split=request.split, beam=request.beam,
                                  frame_order=request.frame_order, out_dir=record.dir / "evals", scorer=scorer)
            payload = report.to_dict(per_video=True)
            if record.config["dataset"] == "synth":
                payload["per_video_semantic"] = per_video_semantic(Path(record.config["root"]), report.predictions_file)
            payload["numerics"] = numerics
            write_json(cached, payload)  # EvalReport.to_dict is JSON-safe: a NaN semantic slot is null
        payload = json.loads(cached.read_text(encoding="utf-8"))
        semantic = payload.get("semantic")
        return EvalRecord(
            request=request, metrics=payload["metrics"],
            semantic=None if semantic is None else {k: math.nan if v is None else v for k, v in semantic.items()},
            per_video=payload.get("per_video", {}), inference_ms_per_clip=float(payload["inference_ms_per_clip"]),
            n_videos=int(payload["n_videos"]), predictions_file=str(payload["predictions_file"]),
            per_video_semantic=payload.get("per_video_semantic") or {},
        )


def run_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """A run's summary as result.json keeps it: without this machine's paths."""
    return {k: v for k, v in summary.items() if k not in ("run_dir", "best_checkpoint")}


def unstarted_summary(parent: RunRecord) -> dict[str, Any]:
    """The summary of a fine-tune whose parent left no best.pt: no step taken, diverged, not converged."""
    reason = f"its parent run {parent.key} ({parent.label}) has no best.pt to start from (it diverged at once)"
    return {"steps_done": 0, "best_step": None, "best_val": None, "stop_reason": "diverged", "diverged": True,
            "convergence": {"converged": False, "reason": reason, "stop_reason": "diverged"}}


def per_video_semantic(root: Path, predictions_file: Path) -> dict[str, dict[str, float | None]]:
    """The semantic checker's slots for each predicted clip (None where a slot does not apply)."""
    from vidcap_core.synth import load_ground_truth, score_caption

    truths = load_ground_truth(root)
    scores: dict[str, dict[str, float | None]] = {}
    for row in read_jsonl(Path(predictions_file)):
        slots = score_caption(row["caption"], truths[row["video_id"]])
        scores[row["video_id"]] = {k: (float(v) if math.isfinite(v) else None) for k, v in slots.items()}
    return scores


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
            if self.jobs == 1 or len(wave) <= 1:
                for spec in wave:
                    self.progress.started_run(suite, spec, resumed=self.resumable(spec))
                    records[spec.key] = self.store.train(spec, progress=self.train_progress)
                    self.counted.add(spec.key)
                    self.progress.finished_run(suite, records[spec.key])
            else:
                records.update(self._parallel(suite, wave))
        counts = self.tally.setdefault(suite, [0, 0])
        counts[0] += len(pending)
        counts[1] += len(unique) - len(pending)
        for key, spec in unique.items():
            self.seen[key] = (spec, records[key])
        return records

    def resumable(self, spec: RunSpec) -> bool:
        return (self.store.dir(spec) / "train" / "last.pt").is_file()

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


def count_pending(store: RunStore, specs: Sequence[RunSpec]) -> tuple[int, int]:
    """(unique runs, of which not finished yet)."""
    unique = {spec.key: spec for spec in specs}
    return len(unique), sum(not store.is_finished(spec) for spec in unique.values())

