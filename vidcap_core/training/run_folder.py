"""The run folder of one training run: preparing it, resuming from it, and reading the result back.

RUN_DIR (vidcap_core.runs.RunDir): config.json, vocab.json, last.pt (resume state), best.pt
(inference checkpoint), log.jsonl (one row per epoch), gradients.jsonl (gradient-flow probe rows).
Every file is written with vidcap_core.files (temp file, then rename), so a killed run leaves at
most temp files, which `prepare_run_dir` sweeps before the run starts or resumes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidcap_core.errors import ConfigError
from vidcap_core.files import atomic_write, read_jsonl, sweep_interrupted_writes, write_json, write_jsonl
from vidcap_core.runs import RunDir
from vidcap_core.training.config import RESUMABLE_CHANGES, TrainConfig, upgrade_renamed_keys


@dataclass
class TrainResult:
    run_dir: Path
    epochs_completed: int
    best_epoch: int | None  # 1-based epoch of best.pt
    best_val: dict[str, float] | None  # val metrics of best.pt
    stopped_early: bool
    diverged: bool
    final_train_loss: float | None
    history: list[dict[str, Any]] = field(default_factory=list)  # the rows of log.jsonl

    @property
    def best_checkpoint(self) -> Path | None:
        path = RunDir(self.run_dir).best
        return path if path.is_file() else None

    @property
    def last_checkpoint(self) -> Path:
        return RunDir(self.run_dir).last


@dataclass
class RunState:
    """What last.pt carries besides weights: where the run stands."""

    epochs_done: int = 0
    best_cider: float = -math.inf
    best_epoch: int | None = None
    best_val: dict[str, float] | None = None
    bad_validations: int = 0
    stop_reason: str | None = None  # "early_stop" | "diverged" once the run has ended for good


def prepare_run_dir(cfg: TrainConfig, run: RunDir, resume: bool) -> None:
    """Sweep what a killed run's writes left; refuse to resume a different run; start fresh
    (removing old run files) when not resuming. Rank 0 only: no other process writes there yet."""
    run.root.mkdir(parents=True, exist_ok=True)
    sweep_interrupted_writes(run.root)  # temp files of a write that a kill -9 cut short
    if resume and run.last.is_file() and run.config.is_file():
        previous = upgrade_renamed_keys(run.read_config())
        changed = sorted(k for k, v in cfg.to_dict().items() if previous.get(k) != v and k not in RESUMABLE_CHANGES)
        if changed:
            raise ConfigError(
                f"{run.root} holds a run with different {', '.join(changed)}; "
                "use another --out, or --no-resume to start over there."
            )
    elif not resume or not run.last.is_file():
        for path in (run.last, run.best, run.log, run.gradients):
            path.unlink(missing_ok=True)
    write_json(run.config, cfg.to_dict())


def trim_logs(run: RunDir, epochs_done: int) -> None:
    """Drop log rows newer than last.pt (a crash between writing the log and last.pt)."""
    for path in (run.log, run.gradients):
        rows = read_jsonl(path)
        kept = [r for r in rows if r["epoch"] <= epochs_done]
        if len(kept) != len(rows):
            write_jsonl(path, kept)


def save_last(path: Path, cfg: TrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer, state: RunState) -> None:
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "config": cfg.to_dict(),
        "epochs_done": state.epochs_done,
        "best_cider": state.best_cider,
        "best_epoch": state.best_epoch,
        "best_val": state.best_val,
        "bad_validations": state.bad_validations,
        "stop_reason": state.stop_reason,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    atomic_write(path, lambda handle: torch.save(payload, handle))


def restore_last(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device) -> RunState:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(payload["model"])
    model.to(device)
    optimizer.load_state_dict(payload["optimizer"])
    torch.set_rng_state(payload["torch_rng"])
    if payload["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
    return RunState(
        epochs_done=payload["epochs_done"],
        best_cider=payload["best_cider"],
        best_epoch=payload["best_epoch"],
        best_val=payload["best_val"],
        bad_validations=payload["bad_validations"],
        stop_reason=payload["stop_reason"],
    )


def collect_result(run: RunDir, state: RunState) -> TrainResult:
    history = read_jsonl(run.log)
    losses = [row["train_loss"] for row in history if row["train_loss"] is not None]
    return TrainResult(
        run_dir=run.root,
        epochs_completed=state.epochs_done,
        best_epoch=state.best_epoch,
        best_val=state.best_val,
        stopped_early=state.stop_reason == "early_stop",
        diverged=state.stop_reason == "diverged",
        final_train_loss=losses[-1] if losses else None,
        history=history,
    )
