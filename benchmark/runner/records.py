"""Finished runs and evaluations as the suites see them: `RunRecord` and `EvalRecord`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.runner.spec import EvalRequest
from vidcap_core.files import read_jsonl
from vidcap_core.training.convergence import TRAINED_STATUSES, training_status


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
