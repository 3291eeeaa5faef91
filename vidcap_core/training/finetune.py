"""A policy-gradient fine-tuning run: from a pretrained captioner G's checkpoint to a run folder, with
SCST (training/scst.py) or the LSTM-GAN (training/adversarial.py) as the reward source of the step in
training/policy_gradient.py.

Data order, run folder, validation and model selection are the MLE loop's (the same batches,
loop.validate_and_select: greedy val, the same selection key, best.pt, plateau schedule, convergence
verdict); the starting model is validated at step 0 (after D's pretraining, adversarial), so best.pt is
never worse than the checkpoint fine-tuning started from.
A run that diverges stops with stop_reason "diverged" and says why in its last log row: a non-finite
loss (policy, MLE or D) or gradient norm, an MLE loss above loop.DIVERGED_LOSS, or one of the rules of
training/collapse.py (reward collapse, discriminator saturation).
Resuming (last.pt: G, D, both optimizers, RNG, where the run stands) continues a run exactly.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from vidcap_core.checkpoint import load_checkpoint
from vidcap_core.devices import pick_device
from vidcap_core.errors import ConfigError
from vidcap_core.features.clips import FRAMES_STREAM, epoch_rng, frame_order_index
from vidcap_core.files import append_jsonl, json_safe, write_json
from vidcap_core.models import CaptionModel
from vidcap_core.runs import RunDir
from vidcap_core.training.adversarial import Adversary, build_adversary, pretrain_discriminator
from vidcap_core.training.batches import epoch_caption_order, step_position
from vidcap_core.training.board import Board, open_board
from vidcap_core.training.collapse import collapse_reason, saturation_reason
from vidcap_core.training.config import TrainConfig
from vidcap_core.training.convergence import PlateauSchedule, warmup_factor
from vidcap_core.training.finetune_config import FinetuneConfig, finetune_file, read_finetune_config
from vidcap_core.training.loop import (
    TrainingData,
    calibrate_best,
    deterministic_algorithms,
    epochs_done,
    finish,
    load_training_data,
    mean_or_none,
    plateau_schedule,
    torch_thread_count,
    validate_and_select,
)
from vidcap_core.training.policy_gradient import Policy, RewardSource, StepStats, policy_generator, policy_step, step_batch
from vidcap_core.training.run_folder import RunState, TrainResult, prepare_run_dir, restore_last, save_last, trim_logs
from vidcap_core.training.scst import build_text_reward


@dataclass
class FinetuneState:
    """What last.pt carries for fine-tuning besides RunState."""

    started: bool = False  # D pretrained (adversarial) and the starting model validated at step 0
    start_val: dict[str, float] | None = None  # val scores of the starting model (the collapse reference)

    def to_dict(self) -> dict[str, Any]:
        return {"started": self.started, "start_val": self.start_val}


def finetune(cfg: TrainConfig, ft: FinetuneConfig, out: Path, resume: bool = True, progress: bool = True) -> TrainResult:
    """Fine-tune the checkpoint `ft.init_from` into RUN_DIR `out` with SCST or adversarially; safe to rerun
    (it resumes). Single process: torchrun is refused. Returns the run's TrainResult (RUN_DIR/summary.json
    adds the fine-tuning config)."""
    cfg.validate()
    ft.validate(cfg)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("policy-gradient fine-tuning runs in one process; start it without torchrun.")
    device = pick_device(cfg.device)
    with deterministic_algorithms(device), torch_thread_count(cfg.torch_threads):
        return run_finetune(cfg, ft, RunDir(Path(out)), resume, progress, device)


def run_finetune(cfg: TrainConfig, ft: FinetuneConfig, run: RunDir, resume: bool, progress: bool,
                 device: torch.device) -> TrainResult:
    data = load_training_data(cfg)
    cfg = replace(cfg, max_caption_words=data.caption_limit.max_words)
    model = load_generator(ft, data, cfg, device)
    prepare_finetune_dir(cfg, ft, run, resume)
    torch.manual_seed(cfg.seed)  # dropout and D's initial weights depend on the seed only
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    reward: RewardSource = (build_adversary(ft, data, cfg.grad_clip, device) if ft.method == "adversarial"
                            else build_text_reward(ft, cfg, data))
    policy = Policy(cfg, ft, model, optimizer, data, device, reward,
                    params=[p for p in model.parameters() if p.requires_grad])
    state, progress_state = RunState(), FinetuneState()
    if resume and run.last.is_file():
        state = restore_last(run.last, model, policy.optimizer, device)
        progress_state = restore_finetune(run.last, policy)
    if state.stop_reason == "budget" and state.steps_done < cfg.max_steps:
        state.stop_reason = None  # a larger budget continues a run that stopped on its budget
    write_json(run.vocab, data.vocab.to_dict())
    trim_logs(run, state.steps_done)
    schedule = plateau_schedule(cfg, data.synth)
    board = open_board(run, cfg, data, state.steps_done)  # TensorBoard events in RUN_DIR
    try:
        if not progress_state.started:
            start_run(policy, run, schedule, state, progress_state, board)
        while state.stop_reason is None:
            finetune_interval(policy, run, schedule, state, progress_state, progress, board)
    finally:
        board.close()
    if run.best.is_file():  # the demo's out-of-distribution flag, as the MLE loop writes it
        calibrate_best(run, data, cfg)
    result = finish(run, state, data, cfg)
    write_json(run.summary, finetune_summary(result, ft))
    return result


def finetune_summary(result: TrainResult, ft: FinetuneConfig) -> dict[str, Any]:
    """TrainResult.summary() plus the fine-tuning config: RUN_DIR/summary.json and what the CLI prints."""
    return {**result.summary(), "finetune": ft.to_dict()}


# ----------------------------------------------------------------------------- setting up


def load_generator(ft: FinetuneConfig, data: TrainingData, cfg: TrainConfig, device: torch.device) -> CaptionModel:
    """G: the starting checkpoint, refused when its vocabulary or caption limit are not this data's."""
    loaded = load_checkpoint(ft.init_from, map_location="cpu")
    if loaded.vocab != data.vocab.to_dict():
        raise ConfigError(f"{ft.init_from} has another vocabulary than dataset {cfg.dataset!r} at {cfg.root} with "
                          f"min_count={cfg.min_count} builds: fine-tune on the data and min_count G was trained with.")
    if loaded.config.max_tokens != cfg.max_tokens:
        raise ConfigError(f"{ft.init_from} decodes at most {loaded.config.max_tokens} tokens, this run "
                          f"{cfg.max_tokens}: set --max-caption-words {loaded.config.max_tokens - 1}.")
    model = loaded.model.to(device)
    model.train()
    return model


def prepare_finetune_dir(cfg: TrainConfig, ft: FinetuneConfig, run: RunDir, resume: bool) -> None:
    """The MLE loop's preparation (sweep, refuse another run's config.json, fresh start), then the same
    for finetune.json: a run folder holds one fine-tune, or an MLE run, never both."""
    resuming = resume and run.last.is_file()
    if resuming:
        previous = read_finetune_config(run)
        if previous is None:
            raise ConfigError(f"{run.root} holds an MLE training run, not a fine-tune; use another --out, or "
                              "--no-resume to start over there.")
        changed = sorted(k for k, v in ft.to_dict().items() if getattr(previous, k) != v)
        if changed:
            raise ConfigError(f"{run.root} holds a fine-tune with different {', '.join(changed)}; use another --out, "
                              "or --no-resume to start over there.")
    prepare_run_dir(cfg, run, resume)
    write_json(finetune_file(run), ft.to_dict())


def restore_finetune(path: Path, policy: Policy) -> FinetuneState:
    """The fine-tuning part of last.pt (restore_last has read the rest)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if "finetune_state" not in payload:
        raise ConfigError(f"{path} was not written by policy-gradient fine-tuning; use another --out, or --no-resume.")
    if isinstance(policy.reward, Adversary):
        policy.reward.restore(payload, path)
    values = payload["finetune_state"]
    return FinetuneState(started=bool(values["started"]), start_val=values["start_val"])


def save_finetune_last(policy: Policy, run: RunDir, state: RunState, progress_state: FinetuneState) -> None:
    extra: dict[str, Any] = {"finetune_state": json_safe(progress_state.to_dict())}
    if isinstance(policy.reward, Adversary):
        extra.update(policy.reward.checkpoint_parts())
    save_last(run.last, policy.cfg, policy.model, policy.optimizer, state, extra=extra)


# ----------------------------------------------------------------------------- the run


def start_run(policy: Policy, run: RunDir, schedule: PlateauSchedule, state: RunState,
              progress_state: FinetuneState, board: Board) -> None:
    """Step 0: pretrain D (adversarial), validate the starting model, log (log.jsonl, `board`), save last.pt."""
    started = time.perf_counter()
    row: dict[str, Any] = {"step": 0, "epoch": 0.0, "phase": "start", "method": policy.ft.method, "train_loss": None,
                           "diverged": False, "diverged_reason": None, "val": None}
    if isinstance(policy.reward, Adversary):
        pretrain = pretrain_discriminator(policy, policy.reward)
        row.update(pretrain)
        if pretrain["diverged_reason"] is not None:
            row.update(diverged=True)
            state.stop_reason = "diverged"
    if state.stop_reason is None:
        validate_and_select(policy.cfg, run, policy.model, policy.data, schedule, state, row)
        progress_state.start_val = row["val"]
    progress_state.started = True
    row["best_step"] = state.best_step
    row["seconds"] = round(time.perf_counter() - started, 3)
    append_jsonl(run.log, json_safe(row))
    board.log(row, policy.model)
    save_finetune_last(policy, run, state, progress_state)


def finetune_interval(policy: Policy, run: RunDir, schedule: PlateauSchedule, state: RunState,
                      progress_state: FinetuneState, progress: bool, board: Board) -> None:
    """`val_every_steps` steps, then validate (select, schedule, collapse check), log (log.jsonl, `board`),
    save last.pt."""
    cfg = policy.cfg
    started = time.perf_counter()
    first = state.steps_done
    steps = train_interval(policy, first, first + cfg.val_every_steps, state.schedule.lr_scale, progress)
    state.steps_done = first + len(steps)
    train_seconds = time.perf_counter() - started
    diverged = next((s.diverged_reason for s in steps if s.diverged_reason is not None), None)
    done = [s for s in steps if s.diverged_reason is None]
    row: dict[str, Any] = {
        "step": state.steps_done,
        "epoch": epochs_done(state.steps_done, cfg, policy.data),
        "phase": "finetune",
        "method": policy.ft.method,
        "lr": cfg.lr * state.schedule.lr_scale * warmup_factor(state.steps_done - 1, cfg.warmup_steps),
        "steps": len(steps),
        **interval_means(done),
        "grad_norm_max": max((s.grad_norm for s in done), default=None),
        "clip_fraction": sum(s.grad_norm > cfg.grad_clip for s in done) / max(len(done), 1),
        "grad_clip": cfg.grad_clip,
        "diverged": False,
        "diverged_reason": None,
        "val": None,
    }
    reason = diverged or saturation_reason(done, isinstance(policy.reward, Adversary))
    if reason is None:
        decision = validate_and_select(cfg, run, policy.model, policy.data, schedule, state, row)
        reason = collapse_reason(policy.ft, progress_state.start_val, row["val"])
        if reason is None and decision == "stop":
            state.stop_reason = "plateau"
        elif reason is None and state.steps_done >= cfg.max_steps:
            state.stop_reason = "budget"
    if reason is not None:
        row.update(diverged=True, diverged_reason=reason)
        state.stop_reason = "diverged"
    row["best_step"] = state.best_step
    row["lr_reductions"] = state.schedule.reductions
    row["train_seconds"] = round(train_seconds, 3)
    row["seconds"] = round(time.perf_counter() - started, 3)
    append_jsonl(run.log, json_safe(row))
    board.log(row, policy.model)
    save_finetune_last(policy, run, state, progress_state)


def interval_means(steps: list[StepStats]) -> dict[str, float | None]:
    """Means over an interval's steps of what each step measured (None where nothing was measured)."""
    names = ("loss", "mle_loss", "pg_loss", "reward", "baseline", "reward_best", "advantage_std", "sample_tokens",
             "grad_norm", "d_loss", "d_accuracy", "d_real_prob", "d_fake_prob", "d_mismatched_prob")
    means: dict[str, float | None] = {}
    for name in names:
        values = [getattr(s, name) for s in steps if getattr(s, name) is not None]
        means["train_loss" if name == "loss" else f"{name}_mean" if name == "grad_norm" else name] = mean_or_none(values)
    return means


def train_interval(policy: Policy, first: int, end: int, lr_scale: float, progress: bool) -> list[StepStats]:
    """Steps first .. end - 1 on the MLE loop's batches; stops after a step that diverged (its stats last)."""
    cfg, data = policy.cfg, policy.data
    pairs = len(data.captions.tokens)
    stats: list[StepStats] = []
    order_epoch, order, frame_index = -1, np.zeros(0, dtype=np.int64), None
    bar = tqdm(range(first, end), desc=f"{policy.ft.method} steps {first + 1}-{end} of {cfg.max_steps}", unit="step",
               leave=False, disable=not progress)
    for step in bar:
        epoch, rows_slice = step_position(step, pairs, cfg.batch_size)
        if epoch != order_epoch:
            order_epoch = epoch
            order = epoch_caption_order(data.captions, cfg.seed, epoch)  # (P,)
            frame_index = frame_order_index(data.train.mask, cfg.frame_order, epoch_rng(cfg.seed, epoch, FRAMES_STREAM))
        for group in policy.optimizer.param_groups:
            group["lr"] = cfg.lr * lr_scale * warmup_factor(step, cfg.warmup_steps)
        batch = step_batch(data, order[rows_slice], frame_index, policy.device)
        outcome = policy_step(policy, batch, policy_generator(cfg.seed, step, policy.device))
        stats.append(outcome)
        if outcome.diverged_reason is not None:
            break
        bar.set_postfix(reward=f"{outcome.reward:.3f}", baseline=f"{outcome.baseline:.3f}")
    bar.close()
    return stats
