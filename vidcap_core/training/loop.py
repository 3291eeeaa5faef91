"""`train(cfg, out)`: masked-NLL training with Adam on a budget of optimizer steps, cheap validation
every `val_every_steps`, model selection, the plateau schedule and the convergence verdict.

Why a step budget rather than epochs: the cost of a run on a 2-core CPU is its optimizer steps, and
what a model needs to learn is steps too; an epoch's length depends on the clip count and captions
per clip (12 to 20 on SynthClips), so "10 epochs" meant 300 steps in one benchmark profile and
thousands in another, and validating once per epoch left the plateau detector a handful of points.
A budget in steps with validation every N steps makes runs of any dataset size comparable, lets the
benchmark size profiles by measured steps-to-converge, and gives the schedule evenly spaced
validations. The data still goes over every (clip, caption) pair (batches.py): epochs are recorded
(`epoch` in each log row: pairs seen / pairs) but decide nothing.

The run folder (its files, resuming from last.pt) is training/run_folder.py's job; this is the loop.
Rerunning the same call on the same RUN_DIR resumes from the last validation and ends where an
uninterrupted run would (weights, optimizer, RNG, LR scale and plateau counters are in last.pt).
Under torchrun every rank trains on its share of each global batch; rank 0 alone validates, logs
and writes files, and broadcasts the schedule's decision (LR scale, stop).

This file needs more than 450 lines: its one job, the loop, is read top to bottom (setup, interval,
step, validation, selection, the verdict), and its pieces share the run state that resuming restores;
split up, a reader would chase one loop across files.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from vidcap_core.checkpoint import preprocessing_from_meta, save_checkpoint
from vidcap_core.data import load_dataset, require_split
from vidcap_core.decoding.predict import predict_captions
from vidcap_core.evaluation.validation import ValidationScorer
from vidcap_core.features.clips import (
    FRAMES_STREAM,
    SAMPLING_STREAM,
    ClipFeatures,
    epoch_rng,
    frame_order_index,
    gather_frames,
    stack_features,
)
from vidcap_core.features.store import FeatureStore
from vidcap_core.files import append_jsonl, json_safe, read_jsonl, write_json
from vidcap_core.models import PAD_ID, ModelConfig, build_model
from vidcap_core.ood import calibrate_checkpoint, dataset_videos
from vidcap_core.runs import RunDir
from vidcap_core.text import Vocabulary
from vidcap_core.training.batches import (
    CaptionLimit,
    EncodedCaptions,
    encode_captions,
    epoch_caption_order,
    resolve_caption_limit,
    split_for_rank,
    step_position,
)
from vidcap_core.training.board import Board, open_board
from vidcap_core.training.config import TrainConfig
from vidcap_core.training.convergence import (
    PlateauSchedule,
    convergence_verdict,
    key_names,
    selection_key,
    warmup_factor,
)
from vidcap_core.training.distributed import (
    DistContext,
    all_reduce_sum,
    barrier,
    broadcast_floats,
    start_distributed,
    stop_distributed,
)
from vidcap_core.training.gradient_probe import ProbeBatch, frame_gradient_norms
from vidcap_core.training.auxiliary import ConceptLabels, derive_concepts, model_fields, training_objective
from vidcap_core.training.run_folder import (
    RunState,
    TrainResult,
    collect_result,
    prepare_run_dir,
    restore_last,
    save_last,
    trim_logs,
)

# A mean token NLL this large means the weights blew up (log V is ~10 for any real vocabulary):
# an RNN with saturated tanh units can keep a finite loss of 1e25 for ever instead of reaching NaN.
DIVERGED_LOSS = 1e4


@dataclass
class StepOutcome:
    loss: float  # global mean token NLL of the batch (before the update)
    grad_norm: float  # total gradient norm before clipping
    diverged_reason: str | None = None  # set when the step was refused and the run must stop


@dataclass
class TrainingData:
    vocab: Vocabulary
    train: ClipFeatures
    captions: EncodedCaptions
    caption_limit: CaptionLimit
    val: ClipFeatures
    val_scorer: ValidationScorer  # CIDEr-D in Python (+ the semantic checker on SynthClips)
    val_references: dict[str, list[str]]
    preprocessing: dict[str, Any]
    concepts: ConceptLabels | None = None  # concepts arch: its vocabulary and each training clip's labels

    @property
    def synth(self) -> bool:
        return self.val_scorer.truths is not None


@dataclass
class IntervalStats:
    """The steps between two validations."""

    loss: float | None  # mean token NLL over the interval's steps; None when it diverged
    steps: int
    grad_norm_mean: float | None  # total gradient norm before clipping
    grad_norm_max: float | None
    clip_fraction: float  # share of steps where clipping fired
    diverged: bool
    diverged_reason: str | None = None


def train(cfg: TrainConfig, out: Path, resume: bool = True, progress: bool = True) -> TrainResult:
    """Train one captioner into RUN_DIR `out`; safe to rerun (it resumes) and to run under torchrun.

    `cfg.max_caption_words` None is resolved from the training captions; RUN_DIR/config.json and the
    checkpoints hold the resolved config. Returns the run's TrainResult (also RUN_DIR/summary.json).
    """
    cfg.validate()
    ctx = start_distributed(cfg.device)
    try:
        with deterministic_algorithms(ctx.device), torch_thread_count(cfg.torch_threads):
            return run_training(cfg, RunDir(Path(out)), resume, progress, ctx)
    finally:
        stop_distributed(ctx)


def run_training(cfg: TrainConfig, run: RunDir, resume: bool, progress: bool, ctx: DistContext) -> TrainResult:
    data = load_training_data(cfg)  # first: the caption limit comes from the training captions
    cfg = replace(cfg, max_caption_words=data.caption_limit.max_words)
    if ctx.is_main:
        prepare_run_dir(cfg, run, resume)
    barrier(ctx)
    model = build_captioner(cfg, data)
    model.to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = RunState()
    if resume and run.last.is_file():
        state = restore_last(run.last, model, optimizer, ctx.device)
    if state.stop_reason == "budget" and state.steps_done < cfg.max_steps:
        state.stop_reason = None  # a larger budget continues a run that stopped on its budget
    elif state.stop_reason is None and state.steps_done >= cfg.max_steps:
        state.stop_reason = "budget"  # resumed with a budget it has already spent
    if ctx.is_main:
        write_json(run.vocab, data.vocab.to_dict())
        trim_logs(run, state.steps_done)
    probe = probe_batch(cfg, data)
    if ctx.is_main and state.steps_done == 0 and not read_jsonl(run.gradients):
        append_jsonl(run.gradients, probe_row(model, probe, 0, 0.0, ctx.device))
    trainable = wrap_for_ranks(model, ctx)
    schedule = plateau_schedule(cfg, data.synth)
    board = open_board(run, cfg, data, state.steps_done, enabled=ctx.is_main)  # TensorBoard events in RUN_DIR
    try:
        while state.stop_reason is None:
            run_interval(cfg, run, trainable, model, optimizer, data, probe, schedule, state, ctx, progress, board)
    finally:
        board.close()
    barrier(ctx)
    if ctx.is_main and run.best.is_file():
        calibrate_best(run, data, cfg)
    result = finish(run, state, data, cfg)
    if ctx.is_main:
        write_json(run.summary, result.summary())
    return result


def calibrate_best(run: RunDir, data: TrainingData, cfg: TrainConfig) -> None:
    """What the model knows: the demo's out-of-distribution flag for RUN_DIR/best.pt, fitted on the
    features training read ((N, T, F) or (N, T, R, G)) and a decoded sample of the run's videos."""
    calibrate_checkpoint(run.best, data.train.feats.numpy(), data.train.mask.numpy(), data.val.feats.numpy(),
                         data.val.mask.numpy(), data.preprocessing,
                         dataset_videos(cfg.dataset, cfg.root, cfg.annotations, cfg.max_videos, cfg.seed))


def plateau_schedule(cfg: TrainConfig, synth: bool) -> PlateauSchedule:
    deltas = {"exact": (cfg.min_delta_exact, 0.0), "CIDEr": (0.0, cfg.min_rel_delta_cider)}  # (absolute, relative)
    return PlateauSchedule(patience=cfg.plateau_patience, decay=cfg.lr_decay, max_reductions=cfg.max_lr_reductions,
                           min_deltas=tuple(deltas[name] for name in key_names(synth)), start_step=cfg.plateau_start_step)


def finish(run: RunDir, state: RunState, data: TrainingData, cfg: TrainConfig) -> TrainResult:
    """The TrainResult of a run that has stopped, with its convergence verdict."""
    history = read_jsonl(run.log)
    validations = [(row["step"], selection_key(row["val"], data.synth)) for row in history if row.get("val")]
    convergence = convergence_verdict(validations, state.steps_done, state.stop_reason, val_clips=len(data.val))
    return collect_result(run, state, epochs_done(state.steps_done, cfg, data), convergence,
                          data.caption_limit.to_dict())


def epochs_done(steps: int, cfg: TrainConfig, data: TrainingData) -> float:
    """Passes over every training pair that `steps` global batches made."""
    return round(steps * cfg.batch_size / max(len(data.captions.tokens), 1), 3)


def run_interval(cfg: TrainConfig, run: RunDir, trainable: nn.Module, model: nn.Module,
                 optimizer: torch.optim.Optimizer, data: TrainingData, probe: ProbeBatch, schedule: PlateauSchedule,
                 state: RunState, ctx: DistContext, progress: bool, board: Board) -> None:
    """`val_every_steps` steps, then validate (select, schedule), log (log.jsonl, `board`), probe, save last.pt.
    Updates `state` in place; sets state.stop_reason when the run ends."""
    started = time.perf_counter()
    first = state.steps_done
    stats = train_steps(cfg, first, first + cfg.val_every_steps, trainable, optimizer, data, state.schedule.lr_scale,
                        ctx, progress)
    state.steps_done = first + stats.steps
    train_seconds = time.perf_counter() - started
    row: dict[str, Any] = {
        "step": state.steps_done,
        "epoch": epochs_done(state.steps_done, cfg, data),
        "lr": cfg.lr * state.schedule.lr_scale * warmup_factor(state.steps_done - 1, cfg.warmup_steps),
        "train_loss": stats.loss,
        "steps": stats.steps,
        "grad_norm_mean": stats.grad_norm_mean,
        "grad_norm_max": stats.grad_norm_max,
        "clip_fraction": stats.clip_fraction,
        "grad_clip": cfg.grad_clip,
        "sampling_prob": sampling_probability(cfg, state.steps_done - 1),
        "diverged": stats.diverged,
        "diverged_reason": stats.diverged_reason,
        "val": None,
    }
    if stats.diverged:
        state.stop_reason = "diverged"
    else:
        decision = validate_and_select(cfg, run, model, data, schedule, state, row) if ctx.is_main else "stale"
        stop, lr_scale = broadcast_floats([float(decision == "stop"), state.schedule.lr_scale], ctx)
        state.schedule.lr_scale = lr_scale
        if stop:
            state.stop_reason = "plateau"
        elif state.steps_done >= cfg.max_steps:
            state.stop_reason = "budget"
    if ctx.is_main:
        validations = sum(1 for r in read_jsonl(run.log) if r.get("val")) + int(row["val"] is not None)
        if not stats.diverged and cfg.probe_every and validations % cfg.probe_every == 0:
            append_jsonl(run.gradients, probe_row(model, probe, state.steps_done, row["epoch"], ctx.device))
        row["best_step"] = state.best_step
        row["lr_reductions"] = state.schedule.reductions
        row["train_seconds"] = round(train_seconds, 3)
        row["seconds"] = round(time.perf_counter() - started, 3)
        append_jsonl(run.log, json_safe(row))
        board.log(row, model)
        save_last(run.last, cfg, model, optimizer, state)
    barrier(ctx)


def validate_and_select(cfg: TrainConfig, run: RunDir, model: nn.Module, data: TrainingData,
                        schedule: PlateauSchedule, state: RunState, row: dict[str, Any]) -> str:
    """Greedy-decode val, score it without Java, keep best.pt on the selection key, step the plateau
    schedule; returns its decision ("progress", "stale", "reduce" or "stop")."""
    started = time.perf_counter()
    predictions = predict_captions(model, data.val, data.vocab, max_len=cfg.max_tokens,
                                   batch_size=cfg.batch_size, beam=1)
    scores = data.val_scorer.score(predictions)
    key = selection_key(scores, data.synth)
    row["val"] = scores
    row["val_distinct_captions"] = len(set(predictions.values()))  # collapse shows as 1 (or a handful)
    if state.best_key is None or key > tuple(state.best_key):
        state.best_key = list(key)
        state.best_step = state.steps_done
        state.best_val = scores
        save_checkpoint(run.best, model, data.vocab.to_dict(), data.preprocessing,
                        extra=json_safe({"step": state.steps_done, "val": scores, "train_config": cfg.to_dict()}))
    decision = schedule.update(state.schedule, key, state.steps_done)
    row["schedule"] = decision
    row["val_seconds"] = round(time.perf_counter() - started, 3)
    return decision


def train_steps(cfg: TrainConfig, first: int, end: int, trainable: nn.Module, optimizer: torch.optim.Optimizer,
                data: TrainingData, lr_scale: float, ctx: DistContext, progress: bool) -> IntervalStats:
    """Global steps first .. end - 1, each on its batch (batches.step_position) at its learning rate."""
    trainable.train()
    params = [p for p in trainable.parameters() if p.requires_grad]
    pairs = len(data.captions.tokens)
    losses: list[float] = []
    norms: list[float] = []
    clipped = 0
    order_epoch, order, frame_index = -1, np.zeros(0, dtype=np.int64), None
    bar = tqdm(range(first, end), desc=f"steps {first + 1}-{end} of {cfg.max_steps}", unit="step", leave=False,
               disable=not (progress and ctx.is_main))
    for step in bar:
        epoch, rows_slice = step_position(step, pairs, cfg.batch_size)
        if epoch != order_epoch:  # a new data epoch: its pair order and frame order
            order_epoch = epoch
            order = epoch_caption_order(data.captions, cfg.seed, epoch)  # (P,)
            frame_index = frame_order_index(data.train.mask, cfg.frame_order, epoch_rng(cfg.seed, epoch, FRAMES_STREAM))
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * lr_scale * warmup_factor(step, cfg.warmup_steps)
        prob = sampling_probability(cfg, step)
        coins = sampling_generator(cfg.seed, step, ctx.device) if prob > 0 else None
        outcome = train_step(cfg, trainable, optimizer, params, data, order[rows_slice], frame_index, prob, coins, ctx)
        if outcome.diverged_reason is not None:
            bar.close()
            return IntervalStats(None, len(losses) + 1, mean_or_none(norms), max(norms, default=None),
                                 clipped / max(len(norms), 1), diverged=True, diverged_reason=outcome.diverged_reason)
        losses.append(outcome.loss)
        norms.append(outcome.grad_norm)
        clipped += int(cfg.grad_clip is not None and outcome.grad_norm > cfg.grad_clip)
        bar.set_postfix(loss=f"{outcome.loss:.3f}")
    bar.close()
    return IntervalStats(mean_or_none(losses), len(losses), mean_or_none(norms), max(norms, default=None),
                         clipped / max(len(norms), 1), diverged=False)


def train_step(cfg: TrainConfig, trainable: nn.Module, optimizer: torch.optim.Optimizer, params: list[nn.Parameter],
               data: TrainingData, rows: np.ndarray, frame_index: torch.Tensor, sampling_prob: float,
               coins: torch.Generator | None, ctx: DistContext) -> StepOutcome:
    """One optimiser step on the global batch `rows`, refused (with a reason) once training has diverged.

    Each rank's loss is its summed NLL divided by the *global* token count, times world size
    (DDP averages gradients), so the update equals the single-process one on the same batch.
    """
    global_tokens = int((data.captions.tokens[rows, 1:] != PAD_ID).sum())
    local_rows = split_for_rank(rows, ctx.rank, ctx.world_size)
    weight = 1.0
    if len(local_rows) == 0:  # more ranks than pairs: join the gradient all-reduce with a zero loss
        local_rows, weight = rows[:1], 0.0
    clips = data.captions.clip_index[local_rows]
    feats = gather_frames(data.train.feats[clips], frame_index[clips]).to(ctx.device)  # (B, T, F)
    mask = data.train.mask[clips].to(ctx.device)  # (B, T)
    captions = trim_padding(data.captions.tokens[local_rows]).to(ctx.device)  # (B, L)
    objective = training_objective(trainable, feats, mask, captions, torch.from_numpy(clips).to(ctx.device), cfg,
                                   data.concepts, sampling_prob=sampling_prob, generator=coins)
    loss_sum = objective.nll_sum
    total = all_reduce_sum(loss_sum.detach().reshape(1) * weight, ctx)
    global_loss = float(total.item()) / max(global_tokens, 1)
    if not math.isfinite(global_loss) or global_loss > DIVERGED_LOSS:
        return StepOutcome(global_loss, math.nan, f"train loss {global_loss:.3g} (nan/inf or > {DIVERGED_LOSS:g})")
    optimizer.zero_grad(set_to_none=True)
    loss = loss_sum * (weight * ctx.world_size / max(global_tokens, 1))
    if objective.auxiliary is not None:  # a batch mean over this rank's share of the global batch
        loss = loss + objective.auxiliary * (weight * ctx.world_size * len(local_rows) / len(rows))
    loss.backward()
    grads = [p.grad for p in params if p.grad is not None]
    if cfg.grad_clip is not None:
        norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip))
    else:
        norm = float(torch.nn.utils.get_total_norm(grads))
    if not math.isfinite(norm):
        return StepOutcome(global_loss, norm, f"gradient norm {norm}")
    optimizer.step()
    return StepOutcome(global_loss, norm)


def sampling_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    """Scheduled-sampling coin flips of one step, independent of dropout's global RNG."""
    seed_value = int(epoch_rng(seed, step, SAMPLING_STREAM).integers(2**62))
    return torch.Generator(device=device).manual_seed(seed_value)


def trim_padding(tokens: torch.Tensor) -> torch.Tensor:
    """Drop columns that are PAD in every row: (B, L) -> (B, L')."""
    width = int((tokens != PAD_ID).sum(dim=1).max())
    return tokens[:, :width]


def sampling_probability(cfg: TrainConfig, step: int) -> float:
    """Scheduled sampling: linear ramp from 0 at step 0 to the maximum after `ramp_steps` steps."""
    if cfg.scheduled_sampling == 0.0:
        return 0.0
    if cfg.scheduled_sampling_ramp_steps == 0:
        return cfg.scheduled_sampling
    return cfg.scheduled_sampling * min(1.0, step / cfg.scheduled_sampling_ramp_steps)


def load_training_data(cfg: TrainConfig) -> TrainingData:
    annotations = Path(cfg.annotations) if cfg.annotations else None
    dataset = load_dataset(cfg.dataset, Path(cfg.root), annotations=annotations, max_videos=cfg.max_videos, seed=cfg.seed)
    train_records = require_split(dataset, "train")  # captioned videos only; DatasetError if none
    val_records = require_split(dataset, "val")  # val selects the best checkpoint, so it must exist
    vocab = Vocabulary.build([c for r in train_records for c in r.captions], min_count=cfg.min_count)
    limit = resolve_caption_limit(train_records, cfg.max_caption_words)
    store = FeatureStore(Path(cfg.features))
    train = stack_features(store, train_records, regions=cfg.regions)  # (N, T, F) or (N, T, R, G)
    val = stack_features(store, val_records, regions=cfg.regions)
    references = {r.video_id: list(r.captions) for r in val_records}
    truths = None
    if cfg.dataset == "synth":  # model selection on the semantic checker's exact accuracy
        from vidcap_core.synth import load_ground_truth

        truths = load_ground_truth(Path(cfg.root))
    return TrainingData(
        vocab=vocab,
        train=train,
        captions=encode_captions(vocab, train_records, limit.max_words),
        caption_limit=limit,
        val=val,
        val_scorer=ValidationScorer(references, truths),
        val_references=references,
        preprocessing=preprocessing_from_meta(store.meta, regions=cfg.regions),
        concepts=derive_concepts(cfg.dataset, train_records, cfg.num_concepts) if cfg.arch == "concepts" else None,
    )


def build_captioner(cfg: TrainConfig, data: TrainingData) -> nn.Module:
    model_cfg = ModelConfig(
        arch=cfg.arch,
        cell=cfg.cell,
        feature_dim=int(data.train.feats.shape[-1]),
        vocab_size=len(data.vocab),
        embed_size=cfg.embed_size,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        dropout=cfg.dropout,
        max_tokens=cfg.max_tokens,
        attention_size=cfg.attention_size,
        frame_deltas=cfg.frame_deltas,
        **model_fields(cfg, data.concepts),
    )
    torch.manual_seed(cfg.seed)  # initial weights depend on the seed only
    return build_model(model_cfg)


def wrap_for_ranks(model: nn.Module, ctx: DistContext) -> nn.Module:
    if not ctx.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def probe_batch(cfg: TrainConfig, data: TrainingData) -> ProbeBatch:
    """The first `probe_batch` val clips with their first reference, fixed for the whole run."""
    n = min(cfg.probe_batch, len(data.val))
    first_refs = [data.val_references[vid][0] for vid in data.val.video_ids[:n]]
    rows = [data.vocab.encode(text, cfg.max_caption_words) for text in first_refs]
    captions = torch.zeros(n, max(len(r) for r in rows), dtype=torch.long)  # (B, L)
    for i, row in enumerate(rows):
        captions[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return ProbeBatch(data.val.feats[:n], data.val.mask[:n], captions)


def probe_row(model: nn.Module, probe: ProbeBatch, step: int, epoch: float, device: torch.device) -> dict[str, Any]:
    on_device = ProbeBatch(probe.feats.to(device), probe.mask.to(device), probe.captions.to(device))
    norms = frame_gradient_norms(model, on_device)
    return {"step": step, "epoch": epoch, "frames": len(norms), "clips": int(probe.feats.shape[0]),
            "grad_norms": norms.tolist()}


def mean_or_none(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


@contextmanager
def deterministic_algorithms(device: torch.device):
    """Deterministic kernels for this run (warn where torch has none), restored afterwards."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])


@contextmanager
def torch_thread_count(count: int):
    """torch's CPU thread count set to `count` for the block (0 keeps the current one), restored afterwards."""
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
