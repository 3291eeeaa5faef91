"""`train(cfg, out)`: masked-NLL training with Adam, val-CIDEr model selection and early stopping.

The run folder (its files, resuming from last.pt) is training/run_folder.py's job; this is the loop.
Rerunning the same call on the same RUN_DIR resumes from last.pt and ends where an uninterrupted
run would. Under torchrun every rank trains on its share of each global batch; rank 0 alone
validates, logs and writes files, and broadcasts the stop decision.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from vidcap_core.checkpoint import preprocessing_from_meta, save_checkpoint
from vidcap_core.data import load_dataset, require_split
from vidcap_core.decoding.predict import predict_captions
from vidcap_core.evaluation import Scorer
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
from vidcap_core.files import append_jsonl, read_jsonl, write_json
from vidcap_core.models import PAD_ID, ModelConfig, build_model
from vidcap_core.runs import RunDir
from vidcap_core.text import Vocabulary
from vidcap_core.training.batches import EncodedCaptions, encode_captions, epoch_caption_order, split_for_rank
from vidcap_core.training.config import TrainConfig
from vidcap_core.training.distributed import (
    DistContext,
    all_reduce_sum,
    barrier,
    broadcast_flag,
    start_distributed,
    stop_distributed,
)
from vidcap_core.training.gradient_probe import ProbeBatch, frame_gradient_norms
from vidcap_core.training.loss import caption_loss
from vidcap_core.training.run_folder import (
    RunState,
    TrainResult,
    collect_result,
    prepare_run_dir,
    restore_last,
    save_last,
    trim_logs,
)

SELECTION_METRIC = "CIDEr"  # model selection and early stopping, on val only (never test)
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
    val: ClipFeatures
    val_references: dict[str, list[str]]
    preprocessing: dict[str, Any]


@dataclass
class EpochStats:
    loss: float | None  # mean token NLL over the epoch's steps; None when it diverged
    steps: int
    grad_norm_mean: float | None  # total gradient norm before clipping
    grad_norm_max: float | None
    clip_fraction: float  # share of steps where clipping fired
    diverged: bool
    diverged_reason: str | None = None


def train(cfg: TrainConfig, out: Path, resume: bool = True, progress: bool = True,
          scorer: Scorer | None = None) -> TrainResult:
    """Train one captioner into RUN_DIR `out`; safe to rerun (it resumes) and to run under torchrun.

    `scorer`: a long-lived Scorer to validate with (the caller closes it), so many runs in one
    process share one METEOR JVM; by default the run starts and closes its own.
    """
    cfg.validate()
    ctx = start_distributed(cfg.device)
    try:
        with deterministic_algorithms(ctx.device), torch_thread_count(cfg.torch_threads):
            return run_training(cfg, RunDir(Path(out)), resume, progress, ctx, scorer)
    finally:
        stop_distributed(ctx)


def run_training(cfg: TrainConfig, run: RunDir, resume: bool, progress: bool, ctx: DistContext,
                 shared_scorer: Scorer | None) -> TrainResult:
    if ctx.is_main:
        prepare_run_dir(cfg, run, resume)
    barrier(ctx)
    data = load_training_data(cfg)
    model = build_captioner(cfg, data)
    model.to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = RunState()
    if resume and run.last.is_file():
        state = restore_last(run.last, model, optimizer, ctx.device)
    if ctx.is_main:
        write_json(run.vocab, data.vocab.to_dict())
        trim_logs(run, state.epochs_done)
    probe = probe_batch(cfg, data)
    if ctx.is_main and state.epochs_done == 0 and not read_jsonl(run.gradients):
        append_jsonl(run.gradients, probe_row(model, probe, 0, ctx.device))
    trainable = wrap_for_ranks(model, ctx)
    needs_scorer = ctx.is_main and state.stop_reason is None and state.epochs_done < cfg.epochs
    own_scorer = Scorer() if needs_scorer and shared_scorer is None else None
    scorer = shared_scorer or own_scorer
    try:
        for epoch in range(state.epochs_done, cfg.epochs):
            if state.stop_reason is not None:
                break
            run_epoch(cfg, run, epoch, trainable, model, optimizer, data, probe, scorer, state, ctx, progress)
    finally:
        if own_scorer is not None:
            own_scorer.close()
    barrier(ctx)
    return collect_result(run, state)


def run_epoch(cfg: TrainConfig, run: RunDir, epoch: int, trainable: nn.Module, model: nn.Module,
              optimizer: torch.optim.Optimizer, data: TrainingData, probe: ProbeBatch, scorer: Any,
              state: RunState, ctx: DistContext, progress: bool) -> None:
    """One epoch: train, maybe validate and probe, log, save last.pt. Updates `state` in place."""
    started = time.perf_counter()
    prob = sampling_probability(cfg, epoch)
    stats = train_one_epoch(cfg, epoch, trainable, optimizer, data, prob, ctx, progress)
    row: dict[str, Any] = {
        "epoch": epoch + 1,
        "train_loss": stats.loss,
        "steps": stats.steps,
        "grad_norm_mean": stats.grad_norm_mean,
        "grad_norm_max": stats.grad_norm_max,
        "clip_fraction": stats.clip_fraction,
        "grad_clip": cfg.grad_clip,
        "sampling_prob": prob,
        "diverged": stats.diverged,
        "diverged_reason": stats.diverged_reason,
        "val": None,
    }
    stop = False
    if stats.diverged:
        state.stop_reason = "diverged"
    elif (epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs:
        if ctx.is_main:
            stop = validate_and_select(cfg, run, epoch, model, data, scorer, state, row)
        stop = broadcast_flag(stop, ctx)
        if stop:
            state.stop_reason = "early_stop"
    state.epochs_done = epoch + 1
    if ctx.is_main:
        if not stats.diverged and cfg.probe_every and (epoch + 1) % cfg.probe_every == 0:
            append_jsonl(run.gradients, probe_row(model, probe, epoch + 1, ctx.device))
        row["best_epoch"] = state.best_epoch
        row["seconds"] = round(time.perf_counter() - started, 3)
        append_jsonl(run.log, row)
        save_last(run.last, cfg, model, optimizer, state)
    barrier(ctx)


def validate_and_select(cfg: TrainConfig, run: RunDir, epoch: int, model: nn.Module, data: TrainingData,
                        scorer: Any, state: RunState, row: dict[str, Any]) -> bool:
    """Greedy-decode val, score it, keep best.pt on val CIDEr; return True to stop early."""
    predictions = predict_captions(model, data.val, data.vocab, max_len=cfg.max_tokens,
                                   batch_size=cfg.batch_size, beam=1)
    scores = scorer.score(predictions, data.val_references, metrics=cfg.val_metrics, per_video=False)
    metrics = {k: float(v) for k, v in scores.corpus.items()}
    row["val"] = metrics
    if metrics[SELECTION_METRIC] > state.best_cider:
        state.best_cider = metrics[SELECTION_METRIC]
        state.best_epoch = epoch + 1
        state.best_val = metrics
        state.bad_validations = 0
        save_checkpoint(run.best, model, data.vocab.to_dict(), data.preprocessing,
                        extra={"epoch": epoch + 1, "val": metrics, "train_config": cfg.to_dict()})
    else:
        state.bad_validations += 1
    return cfg.patience is not None and state.bad_validations >= cfg.patience


def train_one_epoch(cfg: TrainConfig, epoch: int, trainable: nn.Module, optimizer: torch.optim.Optimizer,
                    data: TrainingData, sampling_prob: float, ctx: DistContext, progress: bool) -> EpochStats:
    trainable.train()
    order = epoch_caption_order(data.captions, cfg.captions_per_video, cfg.seed, epoch)  # (P,)
    frame_index = frame_order_index(data.train.mask, cfg.frame_order, epoch_rng(cfg.seed, epoch, FRAMES_STREAM))
    coins = sampling_generator(cfg.seed, epoch, ctx.device) if sampling_prob > 0 else None
    params = [p for p in trainable.parameters() if p.requires_grad]
    losses: list[float] = []
    norms: list[float] = []
    clipped = 0
    starts = range(0, len(order), cfg.batch_size)
    bar = tqdm(starts, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False,
               disable=not (progress and ctx.is_main))
    for start in bar:
        rows = order[start : start + cfg.batch_size]
        step = train_step(cfg, trainable, optimizer, params, data, rows, frame_index, sampling_prob, coins, ctx)
        if step.diverged_reason is not None:
            bar.close()
            return EpochStats(None, len(losses) + 1, mean_or_none(norms), max(norms, default=None),
                              clipped / max(len(norms), 1), diverged=True, diverged_reason=step.diverged_reason)
        losses.append(step.loss)
        norms.append(step.grad_norm)
        clipped += int(cfg.grad_clip is not None and step.grad_norm > cfg.grad_clip)
        bar.set_postfix(loss=f"{step.loss:.3f}")
    bar.close()
    return EpochStats(mean_or_none(losses), len(losses), mean_or_none(norms), max(norms, default=None),
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
    loss_sum, _ = caption_loss(trainable, feats, mask, captions, sampling_prob=sampling_prob, generator=coins)
    total = all_reduce_sum(loss_sum.detach().reshape(1) * weight, ctx)
    global_loss = float(total.item()) / max(global_tokens, 1)
    if not math.isfinite(global_loss) or global_loss > DIVERGED_LOSS:
        return StepOutcome(global_loss, math.nan, f"train loss {global_loss:.3g} (nan/inf or > {DIVERGED_LOSS:g})")
    optimizer.zero_grad(set_to_none=True)
    (loss_sum * (weight * ctx.world_size / max(global_tokens, 1))).backward()
    grads = [p.grad for p in params if p.grad is not None]
    if cfg.grad_clip is not None:
        norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip))
    else:
        norm = float(torch.nn.utils.get_total_norm(grads))
    if not math.isfinite(norm):
        return StepOutcome(global_loss, norm, f"gradient norm {norm}")
    optimizer.step()
    return StepOutcome(global_loss, norm)


def sampling_generator(seed: int, epoch: int, device: torch.device) -> torch.Generator:
    """Scheduled-sampling coin flips of one epoch, independent of dropout's global RNG."""
    seed_value = int(epoch_rng(seed, epoch, SAMPLING_STREAM).integers(2**62))
    return torch.Generator(device=device).manual_seed(seed_value)


def trim_padding(tokens: torch.Tensor) -> torch.Tensor:
    """Drop columns that are PAD in every row: (B, L) -> (B, L')."""
    width = int((tokens != PAD_ID).sum(dim=1).max())
    return tokens[:, :width]


def sampling_probability(cfg: TrainConfig, epoch: int) -> float:
    """Scheduled sampling: linear ramp from 0 at epoch 0 to the maximum after `ramp` epochs."""
    if cfg.scheduled_sampling == 0.0:
        return 0.0
    if cfg.scheduled_sampling_ramp == 0:
        return cfg.scheduled_sampling
    return cfg.scheduled_sampling * min(1.0, epoch / cfg.scheduled_sampling_ramp)


def load_training_data(cfg: TrainConfig) -> TrainingData:
    annotations = Path(cfg.annotations) if cfg.annotations else None
    dataset = load_dataset(cfg.dataset, Path(cfg.root), annotations=annotations, max_videos=cfg.max_videos, seed=cfg.seed)
    train_records = require_split(dataset, "train")  # captioned videos only; DatasetError if none
    val_records = require_split(dataset, "val")  # val selects the best checkpoint, so it must exist
    vocab = Vocabulary.build([c for r in train_records for c in r.captions], min_count=cfg.min_count)
    store = FeatureStore(Path(cfg.features))
    train = stack_features(store, train_records)
    val = stack_features(store, val_records)
    return TrainingData(
        vocab=vocab,
        train=train,
        captions=encode_captions(vocab, train_records, cfg.max_caption_words),
        val=val,
        val_references={r.video_id: list(r.captions) for r in val_records},
        preprocessing=preprocessing_from_meta(store.meta),
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


def probe_row(model: nn.Module, probe: ProbeBatch, epoch: int, device: torch.device) -> dict[str, Any]:
    on_device = ProbeBatch(probe.feats.to(device), probe.mask.to(device), probe.captions.to(device))
    norms = frame_gradient_norms(model, on_device)
    return {"epoch": epoch, "frames": len(norms), "clips": int(probe.feats.shape[0]), "grad_norms": norms.tolist()}


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
