"""The run folder of one training run: preparing it, resuming from it, and reading the result back.

RUN_DIR (vidcap_core.runs.RunDir): config.json (the resolved TrainConfig: the caption limit as a
number), vocab.json, last.pt (resume state), best.pt (inference checkpoint), log.jsonl (one row per
validation interval), gradients.jsonl (gradient-flow probe rows), summary.json (TrainResult.summary:
steps, stop reason, convergence verdict), events.out.tfevents.* (TensorBoard: training/board.py).
Every file is written with vidcap_core.files (temp file, then rename), so a killed run leaves at
most temp files, which `prepare_run_dir` sweeps before the run starts or resumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidcap_core.errors import ConfigError
from vidcap_core.files import atomic_write, json_safe, read_jsonl, sweep_interrupted_writes, write_json, write_jsonl
from vidcap_core.runs import RunDir
from vidcap_core.training.config import RESUMABLE_CHANGES, TrainConfig, upgrade_stored_run_config
from vidcap_core.training.convergence import PlateauState


@dataclass
class TrainResult:
    """What a finished (or stopped) run says about itself; `summary()` is RUN_DIR/summary.json."""

    run_dir: Path
    steps_done: int  # optimizer steps trained
    epochs_done: float  # passes over every training (clip, caption) pair that those steps made
    best_step: int | None  # step of best.pt
    best_val: dict[str, float] | None  # val scores of best.pt
    stop_reason: str | None  # "plateau" | "budget" | "diverged" (None: not finished)
    convergence: dict[str, Any]  # convergence_verdict(...): "converged", "reason", the rule's numbers
    caption_limit: dict[str, Any]  # max_caption_words, where it came from, training captions it truncates
    final_train_loss: float | None
    history: list[dict[str, Any]] = field(default_factory=list)  # the rows of log.jsonl

    @property
    def diverged(self) -> bool:
        return self.stop_reason == "diverged"

    @property
    def converged(self) -> bool:
        return bool(self.convergence.get("converged"))

    @property
    def best_checkpoint(self) -> Path | None:
        path = RunDir(self.run_dir).best
        return path if path.is_file() else None

    @property
    def last_checkpoint(self) -> Path:
        return RunDir(self.run_dir).last

    def summary(self) -> dict[str, Any]:
        """JSON-safe facts of the run (no history): what `vidcap train` prints and the benchmark reads."""
        best = self.best_checkpoint
        return json_safe({
            "run_dir": str(self.run_dir), "steps_done": self.steps_done, "epochs_done": self.epochs_done,
            "best_step": self.best_step, "best_val": self.best_val, "stop_reason": self.stop_reason,
            "diverged": self.diverged, "converged": self.converged, "convergence": self.convergence,
            "caption_limit": self.caption_limit, "final_train_loss": self.final_train_loss,
            "best_checkpoint": str(best) if best is not None else None,
        })


@dataclass
class RunState:
    """What last.pt carries besides weights: where the run stands."""

    steps_done: int = 0
    best_key: list[float] | None = None  # selection_key of best.pt
    best_step: int | None = None
    best_val: dict[str, float] | None = None
    schedule: PlateauState = field(default_factory=PlateauState)
    stop_reason: str | None = None  # "plateau" | "budget" | "diverged" once the run has ended


def prepare_run_dir(cfg: TrainConfig, run: RunDir, resume: bool) -> None:
    """Sweep what a killed run's writes left; refuse to resume a different run; start fresh
    (removing old run files) when not resuming. Rank 0 only: no other process writes there yet."""
    run.root.mkdir(parents=True, exist_ok=True)
    sweep_interrupted_writes(run.root)  # temp files of a write that a kill -9 cut short
    if resume and run.last.is_file() and run.config.is_file():
        previous = upgrade_stored_run_config(run.read_config())
        changed = sorted(k for k, v in cfg.to_dict().items() if previous.get(k) != v and k not in RESUMABLE_CHANGES)
        if changed:
            raise ConfigError(
                f"{run.root} holds a run with different {', '.join(changed)}; "
                "use another --out, or --no-resume to start over there."
            )
    elif not resume or not run.last.is_file():
        for path in (run.last, run.best, run.log, run.gradients, run.summary, *run.event_files()):
            path.unlink(missing_ok=True)
    write_json(run.config, cfg.to_dict())


def trim_logs(run: RunDir, steps_done: int) -> None:
    """Drop log rows newer than last.pt (a crash between writing the log and last.pt)."""
    for path in (run.log, run.gradients):
        rows = read_jsonl(path)
        kept = [r for r in rows if r["step"] <= steps_done]
        if len(kept) != len(rows):
            write_jsonl(path, kept)


def save_last(path: Path, cfg: TrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer, state: RunState,
              extra: dict[str, Any] | None = None) -> None:
    """Write last.pt; `extra` adds entries of a loop built on this one (policy-gradient fine-tuning:
    the discriminator and its optimizer), which `restore_last` leaves to that loop."""
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "config": cfg.to_dict(),
        "steps_done": state.steps_done,
        "best_key": state.best_key,
        "best_step": state.best_step,
        "best_val": state.best_val,
        "schedule": state.schedule.to_dict(),  # the LR scale and plateau counters: resume continues them
        "stop_reason": state.stop_reason,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        **(extra or {}),
    }
    atomic_write(path, lambda handle: torch.save(payload, handle))


def restore_last(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device) -> RunState:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if "steps_done" not in payload:
        raise ConfigError(f"{path} was written by the old epoch-based training loop and cannot be resumed by this "
                          "one; use another --out, or --no-resume to start over there.")
    model.load_state_dict(payload["model"])
    model.to(device)
    optimizer.load_state_dict(payload["optimizer"])
    torch.set_rng_state(payload["torch_rng"])
    if payload["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
    return RunState(
        steps_done=payload["steps_done"],
        best_key=payload["best_key"],
        best_step=payload["best_step"],
        best_val=payload["best_val"],
        schedule=PlateauState.from_dict(payload["schedule"]),
        stop_reason=payload["stop_reason"],
    )


def collect_result(run: RunDir, state: RunState, epochs_done: float, convergence: dict[str, Any],
                   caption_limit: dict[str, Any]) -> TrainResult:
    history = read_jsonl(run.log)
    losses = [row["train_loss"] for row in history if row["train_loss"] is not None]
    return TrainResult(
        run_dir=run.root,
        steps_done=state.steps_done,
        epochs_done=epochs_done,
        best_step=state.best_step,
        best_val=state.best_val,
        stop_reason=state.stop_reason,
        convergence=convergence,
        caption_limit=caption_limit,
        final_train_loss=losses[-1] if losses else None,
        history=history,
    )
