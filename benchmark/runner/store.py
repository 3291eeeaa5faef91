"""`RunStore`: the runs under `<cache>/runs/<key>/` (layout in benchmark/runner/__init__.py): which are
finished, loading them, training one (or its fine-tune parent first) and its cached evaluations."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark.identity import BENCH_TORCH_THREADS, describe_commit
from benchmark.runner.records import EvalRecord, RunRecord
from benchmark.runner.spec import EvalRequest, RunSpec
from vidcap_core.files import read_jsonl, write_json
from vidcap_core.numerics import EVALUATION_STAGES, versions
from vidcap_core.training.config import TrainConfig


def last_logged_step(log: Path) -> int:
    """The last step a run's log.jsonl records (0: none): where a call that resumes it starts, give or
    take the rows newer than last.pt that resuming drops."""
    return max((int(row.get("step", 0)) for row in read_jsonl(log)), default=0)


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
        resumed_at_step = last_logged_step(directory / "train" / "log.jsonl")  # 0 unless an interrupted call logged
        started = time.perf_counter()
        if spec.stage is None:
            config, summary, parent = *self._train_mle(spec, progress), None
        else:
            config, summary, parent = self._finetune(spec, progress)
        wall = time.perf_counter() - started
        payload = {"label": spec.label, "key": spec.key, "config": config, "result": summary,
                   "wall_seconds": round(wall, 3), "resumed_at_step": resumed_at_step}
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
        from vidcap_core.training.finetune import finetune, finetune_summary

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

            features = Path(request.features) if request.features is not None else None
            out_dir = record.dir / "evals" / request.tag if request.tag else record.dir / "evals"  # its own predictions
            report = evaluate_run(record.train_dir, split=request.split, beam=request.beam, frame_order=request.frame_order,
                                  features=features, out_dir=out_dir, scorer=scorer)
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


def count_pending(store: RunStore, specs: Sequence[RunSpec]) -> tuple[int, int]:
    """(unique runs, of which not finished yet)."""
    unique = {spec.key: spec for spec in specs}
    return len(unique), sum(not store.is_finished(spec) for spec in unique.values())
