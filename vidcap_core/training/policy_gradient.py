"""Policy-gradient fine-tuning of a pretrained captioner G: self-critical sequence training (SCST,
Rennie et al. 2017) and the LSTM-GAN's adversarial training [2]. One loop, two reward sources.

Each step, for a batch of (clip, reference) pairs in the MLE loop's data order:
1. G samples K = `samples` captions per clip (decoding/sampling.py: multinomial over `step()` at
   `temperature`, seeded per step; with G's dropout off unless `sample_dropout`);
2. the reward r of each sampled caption: CIDEr-D against the clip's references or the SynthClips
   checker's exact score (SCST, training/rewards.py), or D's probability that it is a reference
   of this clip (adversarial, after D's update on this batch);
3. the baseline b of each sample: the mean reward of the clip's other K - 1 samples (`baseline`
   "mean", Luo 2020, "A better variant of self-critical sequence training"), or the reward of G's
   greedy caption of the clip ("greedy", Rennie et al. 2017);
4. loss = (1 - mle_weight) * REINFORCE loss + mle_weight * the MLE loop's objective on the reference
   (teacher-forced NLL, plus the arch's auxiliary losses when it has them), where
   REINFORCE loss = -sum_t (r - b) log pi(w_t) / tokens (ruotianluo's RewardCriterion); the total
   gradient norm is clipped to `grad_clip` (required). The MLE term keeps G a language model while the
   reward pulls it, and the clipping bounds every step: stable by construction, not by luck.

Why policy gradient and not Gumbel-softmax for the GAN: G's outputs are discrete words and D reads
token ids (an embedding lookup), so there is no gradient from D's score to G's logits. Gumbel-softmax
would need D to take soft one-hot vectors (a different D at training and at test time), a temperature
schedule, and it gives a biased gradient whose bias grows as the temperature falls; REINFORCE needs
only D's score of the words G actually emitted, is unbiased, and is the same estimator as SCST, so
the two methods share this loop.

Why the mean of the other samples as baseline (the default, for both reward sources), measured from
the converged SynthClips attention-LSTM (issue #13; val exact 0.500, CIDEr-D 2.528): with one sample
at temperature 1 and dropout on, a sample's CIDEr-D was 2.9 against the greedy caption's 3.4 on the
training clips, so nearly every advantage was negative and 400 steps moved nothing (best.pt stayed the
starting model). The leave-one-out mean is per clip (it removes the clip's own difficulty, as the
greedy caption did), is scored by the same reward (the current D, for the GAN) as the sample, costs no
greedy decode, and its advantages sum to zero over a clip's samples: the better half is pushed up as
much as the worse half is pushed down. Sampling below temperature 1 and without dropout keeps the
samples near the captions greedy decoding will emit (the greedy caption is what validation scores),
so the gradient works on the choices that change it: on the training clips at temperature 1 with
dropout a sample's exact was 0.57 (greedy 0.89); without dropout 0.69; at 0.5 without dropout 0.85.
Measured (SCST, CIDEr-D reward, K = 5, 400 steps, val CIDEr-D at step 400): temperature 1 with dropout
2.554, temperature 1 without 2.608, 0.5 without 2.667 (test CIDEr-D 2.276 -> 2.399).

The discriminator (models/discriminator.py) is pretrained for `d_pretrain_epochs` on references vs
G's samples (and references paired with another clip's video, so D must look at the clip) before G
moves; then each step updates D `d_steps` times on the batch (all K samples of each clip are fakes),
then G once. Real and fake weigh half of D's loss each, so an uninformed D says P(real) = 0.5.

Run folder, validation and model selection are the MLE loop's (loop.validate_and_select: greedy val,
the same selection key, best.pt, plateau schedule, convergence verdict); the starting model is
validated at step 0, so best.pt is never worse than the checkpoint fine-tuning started from.
A run that diverges stops with stop_reason "diverged" and says why in its last log row:
- a non-finite loss (policy, MLE or D) or gradient norm, or an MLE loss above loop.DIVERGED_LOSS;
- reward collapse: validation's score of the reward's metric (CIDEr-D, or exact on --reward semantic)
  below COLLAPSE_FRACTION of the starting model's;
- discriminator saturation (adversarial): D right on every sample of every step of an interval while
  G's captions get P(real) < SATURATED_FAKE_PROB on average: G's reward has vanished.
Resuming (last.pt: G, D, both optimizers, RNG, where the run stands) continues a run exactly.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from vidcap_core.checkpoint import load_checkpoint
from vidcap_core.decoding.greedy import greedy_decode
from vidcap_core.decoding.sampling import sample_captions
from vidcap_core.devices import pick_device
from vidcap_core.errors import ConfigError
from vidcap_core.features.clips import (
    DISCRIMINATOR_STREAM,
    FRAMES_STREAM,
    POLICY_SAMPLING_STREAM,
    epoch_rng,
    frame_order_index,
    gather_frames,
)
from vidcap_core.files import append_jsonl, json_safe, write_json
from vidcap_core.models import EOS_ID, PAD_ID, CaptionModel
from vidcap_core.models.discriminator import CaptionDiscriminator, DiscriminatorConfig, mean_frame_feature
from vidcap_core.runs import RunDir
from vidcap_core.training.batches import epoch_caption_order, step_position, steps_per_epoch
from vidcap_core.training.board import Board, NoBoard, open_board
from vidcap_core.training.config import TrainConfig
from vidcap_core.training.convergence import PlateauSchedule, warmup_factor
from vidcap_core.training.finetune_config import FinetuneConfig, finetune_file, read_finetune_config
from vidcap_core.training.loop import (
    DIVERGED_LOSS,
    TrainingData,
    calibrate_best,
    deterministic_algorithms,
    epochs_done,
    finish,
    load_training_data,
    mean_or_none,
    plateau_schedule,
    torch_thread_count,
    trim_padding,
    validate_and_select,
)
from vidcap_core.training.auxiliary import training_objective
from vidcap_core.training.rewards import CiderDReward, SemanticReward, TextReward
from vidcap_core.training.run_folder import RunState, TrainResult, prepare_run_dir, restore_last, save_last, trim_logs

COLLAPSE_FRACTION = 0.5  # val score of the reward's metric below half the starting model's: collapse
SATURATED_FAKE_PROB = 0.01  # D's mean P(real) of G's samples below this, with D always right: saturated


@dataclass
class Adversary:
    """The LSTM-GAN's discriminator and its optimizer."""

    discriminator: CaptionDiscriminator
    optimizer: torch.optim.Optimizer


@dataclass
class FinetuneState:
    """What last.pt carries for fine-tuning besides RunState."""

    started: bool = False  # D pretrained (adversarial) and the starting model validated at step 0
    start_val: dict[str, float] | None = None  # val scores of the starting model (the collapse reference)

    def to_dict(self) -> dict[str, Any]:
        return {"started": self.started, "start_val": self.start_val}


@dataclass
class StepBatch:
    """One step's pairs on the device."""

    feats: Tensor  # (B, T, F)
    mask: Tensor  # (B, T) bool
    references: Tensor  # (B, L) long: BOS w1 .. EOS PAD
    clip_ids: Tensor  # (B,) long: rows of the training clips (the auxiliary losses' labels)
    video_ids: list[str]


@dataclass
class StepStats:
    """One optimizer step of G (and D's updates before it)."""

    loss: float
    mle_loss: float
    pg_loss: float
    reward: float  # mean reward of the sampled captions
    baseline: float  # mean baseline (equal to `reward` with the leave-one-out mean; the greedy captions' reward)
    advantage_std: float
    sample_tokens: float  # mean sampled caption length in tokens, EOS included
    grad_norm: float
    reward_best: float | None = None  # mean over clips of the best of its K samples' rewards
    d_loss: float | None = None
    d_accuracy: float | None = None  # on references (real) vs G's samples (fake), each half of the weight
    d_real_prob: float | None = None
    d_fake_prob: float | None = None
    d_mismatched_prob: float | None = None  # references shown with another clip
    diverged_reason: str | None = None


@dataclass
class Policy:
    """Everything a fine-tuning step needs besides the batch."""

    cfg: TrainConfig
    ft: FinetuneConfig
    model: CaptionModel
    optimizer: torch.optim.Optimizer
    data: TrainingData
    device: torch.device
    text_reward: TextReward | None = None  # scst
    adversary: Adversary | None = None  # adversarial
    params: list[nn.Parameter] = field(default_factory=list)
    board: Board = field(default_factory=NoBoard)  # TensorBoard events in RUN_DIR (training/board.py)


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
    policy = Policy(cfg, ft, model, torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay),
                    data, device, params=[p for p in model.parameters() if p.requires_grad])
    if ft.method == "adversarial":
        policy.adversary = build_adversary(ft, data, device)
    else:
        policy.text_reward = build_text_reward(ft, cfg, data)
    state, progress_state = RunState(), FinetuneState()
    if resume and run.last.is_file():
        state = restore_last(run.last, model, policy.optimizer, device)
        progress_state = restore_finetune(run.last, policy)
    if state.stop_reason == "budget" and state.steps_done < cfg.max_steps:
        state.stop_reason = None  # a larger budget continues a run that stopped on its budget
    write_json(run.vocab, data.vocab.to_dict())
    trim_logs(run, state.steps_done)
    schedule = plateau_schedule(cfg, data.synth)
    policy.board = open_board(run, cfg, data, state.steps_done)
    try:
        if not progress_state.started:
            start_run(policy, run, schedule, state, progress_state)
        while state.stop_reason is None:
            finetune_interval(policy, run, schedule, state, progress_state, progress)
    finally:
        policy.board.close()
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


def build_text_reward(ft: FinetuneConfig, cfg: TrainConfig, data: TrainingData) -> TextReward:
    """SCST's reward over the training clips: CIDEr-D (training references) or the semantic checker."""
    from vidcap_core.data import load_dataset, require_split

    if ft.reward == "semantic":
        from vidcap_core.synth import load_ground_truth

        truths = load_ground_truth(Path(cfg.root))
        return SemanticReward({v: truths[v] for v in data.train.video_ids if v in truths})
    annotations = Path(cfg.annotations) if cfg.annotations else None
    dataset = load_dataset(cfg.dataset, Path(cfg.root), annotations=annotations, max_videos=cfg.max_videos,
                           seed=cfg.seed)
    return CiderDReward({r.video_id: list(r.captions) for r in require_split(dataset, "train")})


def build_adversary(ft: FinetuneConfig, data: TrainingData, device: torch.device) -> Adversary:
    config = DiscriminatorConfig(vocab_size=len(data.vocab), feature_dim=int(data.train.feats.shape[-1]),
                                 embed_size=ft.d_embed_size, filters=ft.d_filters, video_size=ft.d_video_size,
                                 hidden_size=ft.d_hidden_size, dropout=ft.d_dropout)
    discriminator = CaptionDiscriminator(config).to(device)
    return Adversary(discriminator, torch.optim.Adam(discriminator.parameters(), lr=ft.d_lr))


def restore_finetune(path: Path, policy: Policy) -> FinetuneState:
    """The fine-tuning part of last.pt (restore_last has read the rest)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if "finetune_state" not in payload:
        raise ConfigError(f"{path} was not written by policy-gradient fine-tuning; use another --out, or --no-resume.")
    if policy.adversary is not None:
        try:
            policy.adversary.discriminator.load_state_dict(payload["discriminator"])
        except RuntimeError as exc:  # a D of an older layout (before the caption x clip term)
            raise ConfigError(f"{path} holds a discriminator of another layout than this version builds ({exc}); "
                              "start the fine-tune over with --no-resume or use another --out.") from exc
        policy.adversary.optimizer.load_state_dict(payload["discriminator_optimizer"])
    values = payload["finetune_state"]
    return FinetuneState(started=bool(values["started"]), start_val=values["start_val"])


def save_finetune_last(policy: Policy, run: RunDir, state: RunState, progress_state: FinetuneState) -> None:
    extra: dict[str, Any] = {"finetune_state": json_safe(progress_state.to_dict())}
    if policy.adversary is not None:
        extra["discriminator"] = policy.adversary.discriminator.state_dict()
        extra["discriminator_optimizer"] = policy.adversary.optimizer.state_dict()
        extra["discriminator_config"] = policy.adversary.discriminator.config.to_dict()
    save_last(run.last, policy.cfg, policy.model, policy.optimizer, state, extra=extra)


# ----------------------------------------------------------------------------- the run


def start_run(policy: Policy, run: RunDir, schedule: PlateauSchedule, state: RunState,
              progress_state: FinetuneState) -> None:
    """Step 0: pretrain D (adversarial), validate the starting model, log, save last.pt."""
    started = time.perf_counter()
    row: dict[str, Any] = {"step": 0, "epoch": 0.0, "phase": "start", "method": policy.ft.method, "train_loss": None,
                           "diverged": False, "diverged_reason": None, "val": None}
    if policy.adversary is not None:
        pretrain = pretrain_discriminator(policy)
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
    policy.board.log(row, policy.model)
    save_finetune_last(policy, run, state, progress_state)


def pretrain_discriminator(policy: Policy) -> dict[str, Any]:
    """D on references vs G's samples (and mismatched clips) for `d_pretrain_epochs` passes over the pairs;
    G does not move. Returns the log fields: steps, and the means over its last pass of what
    discriminator_step measures (loss, accuracy, P(real) of references, samples, mismatched references)."""
    cfg, ft, data = policy.cfg, policy.ft, policy.data
    pairs = len(data.captions.tokens)
    per_epoch = steps_per_epoch(pairs, cfg.batch_size)
    total = math.ceil(ft.d_pretrain_epochs * per_epoch)
    measured: list[dict[str, float | None]] = []
    order, seeds, frame_index = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), None
    for step in range(total):
        epoch, rows_slice = step_position(step, pairs, cfg.batch_size)
        if step % per_epoch == 0:
            rng = epoch_rng(cfg.seed, epoch, DISCRIMINATOR_STREAM)
            order = rng.permutation(pairs).astype(np.int64)  # (P,)
            seeds = rng.integers(2**62, size=per_epoch)
            frame_index = frame_order_index(data.train.mask, cfg.frame_order, epoch_rng(cfg.seed, epoch, FRAMES_STREAM))
        batch = step_batch(data, order[rows_slice], frame_index, policy.device)
        generator = torch.Generator(device=policy.device).manual_seed(int(seeds[step % per_epoch]))
        policy.model.train(ft.sample_dropout)  # the samples D will see during adversarial training
        with torch.no_grad():
            sample = sample_captions(policy.model, batch.feats, batch.mask, generator=generator,
                                     max_len=cfg.max_tokens, temperature=ft.temperature)
        policy.model.train()
        d = discriminator_step(policy, batch, sample.tokens)
        if not math.isfinite(d["d_loss"]):
            return {"d_pretrain_steps": step + 1, "d_loss": d["d_loss"], "d_accuracy": None,
                    "diverged_reason": f"discriminator pretraining loss {d['d_loss']} at step {step + 1}"}
        measured.append(d)
    last = measured[-per_epoch:]
    means = {name: mean_or_none([d[name] for d in last if d[name] is not None])
             for name in ("d_loss", "d_accuracy", "d_real_prob", "d_fake_prob", "d_mismatched_prob")}
    return {"d_pretrain_steps": total, **means, "diverged_reason": None}


def finetune_interval(policy: Policy, run: RunDir, schedule: PlateauSchedule, state: RunState,
                      progress_state: FinetuneState, progress: bool) -> None:
    """`val_every_steps` steps, then validate (select, schedule, collapse check), log, save last.pt."""
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
    reason = diverged or saturation_reason(done, policy.adversary is not None)
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
    policy.board.log(row, policy.model)
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


def saturation_reason(steps: list[StepStats], adversarial: bool) -> str | None:
    """D right on every sample of every step while G's captions look fake to it: G's reward has vanished."""
    if not adversarial or not steps:
        return None
    fake = float(np.mean([s.d_fake_prob for s in steps]))
    if all(s.d_accuracy >= 1.0 for s in steps) and fake < SATURATED_FAKE_PROB:
        return (f"discriminator saturated: accuracy 1.0 on all {len(steps)} steps of the interval and mean "
                f"P(real) of G's captions {fake:.3g} < {SATURATED_FAKE_PROB}: G's reward has vanished")
    return None


def collapse_reason(ft: FinetuneConfig, start_val: dict[str, float] | None, val: dict[str, float] | None) -> str | None:
    """Validation's score of the reward's metric fell below COLLAPSE_FRACTION of the starting model's."""
    if not start_val or not val:
        return None
    metric = "exact" if ft.reward == "semantic" else "CIDEr"
    start, now = start_val.get(metric), val.get(metric)
    if start is None or now is None or not start > 0:
        return None
    if not math.isfinite(now) or now < COLLAPSE_FRACTION * start:
        return (f"reward collapse: val {metric} {now:.4g} < {COLLAPSE_FRACTION} x the starting model's {start:.4g}")
    return None


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


def policy_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    """The caption sampler's generator of one step, independent of dropout's global RNG."""
    seed_value = int(epoch_rng(seed, step, POLICY_SAMPLING_STREAM).integers(2**62))
    return torch.Generator(device=device).manual_seed(seed_value)


def step_batch(data: TrainingData, rows: np.ndarray, frame_index: Tensor, device: torch.device) -> StepBatch:
    clips = data.captions.clip_index[rows]  # (B,)
    return StepBatch(
        feats=gather_frames(data.train.feats[clips], frame_index[clips]).to(device),  # (B, T, F)
        mask=data.train.mask[clips].to(device),  # (B, T)
        references=trim_padding(data.captions.tokens[rows]).to(device),  # (B, L)
        clip_ids=torch.from_numpy(clips).to(device),  # (B,)
        video_ids=[data.train.video_ids[c] for c in clips],
    )


# ----------------------------------------------------------------------------- one step


def policy_step(policy: Policy, batch: StepBatch, generator: torch.Generator) -> StepStats:
    """Sample K captions per clip, (update D,) reward, baseline, one clipped update of G on the mixed
    loss; refused (diverged_reason set, nothing updated) when a loss or the gradient norm is not finite."""
    cfg, ft, model = policy.cfg, policy.ft, policy.model
    B, K = len(batch.video_ids), ft.samples
    feats, mask = repeat_clips(batch.feats, K), repeat_clips(batch.mask, K)  # (B K, T, F), (B K, T)
    model.train(ft.sample_dropout)
    sample = sample_captions(model, feats, mask, generator=generator, max_len=cfg.max_tokens,
                             temperature=ft.temperature)  # rows b * K .. b * K + K - 1 are clip b's
    model.train()
    greedy = greedy_tokens(model, batch.feats, batch.mask, cfg.max_tokens) if ft.baseline == "greedy" else None
    d_stats: dict[str, float | None] = {}
    if policy.adversary is not None:
        for _ in range(ft.d_steps):
            d_stats = discriminator_step(policy, batch, sample.tokens.detach())
        if not math.isfinite(d_stats["d_loss"]):
            return refused(f"discriminator loss {d_stats['d_loss']}", d_stats)
        reward = discriminator_rewards(policy.adversary, feats, mask, sample.tokens)  # (B K,)
        greedy_reward = None if greedy is None else discriminator_rewards(policy.adversary, batch.feats, batch.mask,
                                                                          greedy)  # (B,)
    else:
        reward = text_rewards(policy, sample.word_ids(), repeat_ids(batch.video_ids, K))  # (B K,)
        greedy_reward = None if greedy is None else text_rewards(policy, word_rows(greedy), batch.video_ids)  # (B,)
    rewards = reward.view(B, K)  # (B, K)
    if greedy_reward is None:
        baseline = leave_one_out_baseline(rewards)  # (B, K)
    else:
        baseline = greedy_reward.unsqueeze(1).expand(B, K)  # (B, K)
    advantage = (rewards - baseline).reshape(B * K).to(feats.device)  # (B K,)
    pg_loss = -(advantage.unsqueeze(1) * sample.logprobs).sum() / sample.mask.sum().clamp(min=1)
    # The MLE loop's own objective: the token NLL plus the arch's auxiliary losses (concepts, consistency).
    objective = training_objective(model, batch.feats, batch.mask, batch.references, batch.clip_ids, cfg,
                                   policy.data.concepts)
    mle_loss = objective.nll_sum / max(objective.n_tokens, 1)
    mle_term = mle_loss if objective.auxiliary is None else mle_loss + objective.auxiliary
    loss = (1.0 - ft.mle_weight) * pg_loss + ft.mle_weight * mle_term
    values = (float(loss.item()), float(mle_loss.item()), float(pg_loss.item()))
    if not all(math.isfinite(v) for v in values) or values[1] > DIVERGED_LOSS:
        return refused(f"loss {values[0]:.3g} (MLE {values[1]:.3g}, policy {values[2]:.3g}): nan/inf or MLE > "
                       f"{DIVERGED_LOSS:g}", d_stats)
    policy.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = float(torch.nn.utils.clip_grad_norm_(policy.params, cfg.grad_clip))
    if not math.isfinite(norm):
        return refused(f"gradient norm {norm}", d_stats)
    policy.optimizer.step()
    return StepStats(
        loss=values[0], mle_loss=values[1], pg_loss=values[2], reward=float(rewards.mean()),
        baseline=float(baseline.mean()), advantage_std=float(advantage.std(unbiased=False)),
        sample_tokens=float(sample.mask.sum(1).float().mean()), grad_norm=norm,
        reward_best=float(rewards.max(1).values.mean()), **d_stats,
    )


def leave_one_out_baseline(rewards: Tensor) -> Tensor:
    """Each sample's baseline: the mean reward of the other K - 1 samples of its clip (Luo 2020, "A better
    variant of self-critical sequence training"). rewards (B, K), K >= 2 -> (B, K). The advantages of a
    clip sum to zero: its better-than-average samples are pushed up, the others down, by as much."""
    K = rewards.size(1)
    return (rewards.sum(dim=1, keepdim=True) - rewards) / (K - 1)  # (B, K)


def repeat_clips(values: Tensor, times: int) -> Tensor:
    """Each clip's row `times` times in a row: (B, ...) -> (B * times, ...)."""
    return values if times == 1 else values.repeat_interleave(times, dim=0)


def repeat_ids(video_ids: list[str], times: int) -> list[str]:
    return [v for v in video_ids for _ in range(times)]


def refused(reason: str, d_stats: dict[str, float | None]) -> StepStats:
    nan = math.nan
    return StepStats(loss=nan, mle_loss=nan, pg_loss=nan, reward=nan, baseline=nan, advantage_std=nan,
                     sample_tokens=nan, grad_norm=nan, diverged_reason=reason, **d_stats)


def greedy_tokens(model: CaptionModel, feats: Tensor, mask: Tensor, max_len: int) -> Tensor:
    """G's greedy captions as D reads them: words, then EOS where one was emitted, PAD after: (B, L)."""
    hypotheses = greedy_decode(model, feats, mask, max_len=max_len)
    rows = [h[0].tokens + ([EOS_ID] if len(h[0].tokens) < max_len else []) for h in hypotheses]
    out = torch.full((len(rows), max(len(r) for r in rows)), PAD_ID, dtype=torch.long)  # (B, L)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out.to(feats.device)


def word_rows(tokens: Tensor) -> list[list[int]]:
    """Each row's word ids, without EOS and PAD: tokens (B, L) -> B lists."""
    return [[t for t in row if t not in (EOS_ID, PAD_ID)] for row in tokens.tolist()]


def text_rewards(policy: Policy, token_rows: list[list[int]], video_ids: list[str]) -> Tensor:
    """SCST: the reward of each caption (word ids) of its clip: (N,) float32."""
    assert policy.text_reward is not None
    captions = [policy.data.vocab.decode(row) for row in token_rows]
    return torch.from_numpy(policy.text_reward(captions, video_ids)).float()


def discriminator_rewards(adversary: Adversary, feats: Tensor, mask: Tensor, tokens: Tensor) -> Tensor:
    """LSTM-GAN: D's P(real) of each caption (tokens (N, L)) of its clip (feats (N, T, ...)): (N,) float32 on
    the CPU, D in eval mode."""
    discriminator = adversary.discriminator
    video = mean_frame_feature(feats, mask)  # (N, F)
    was_training = discriminator.training
    discriminator.eval()
    with torch.no_grad():
        reward = torch.sigmoid(discriminator(tokens.detach(), video))  # (N,)
    discriminator.train(was_training)
    return reward.float().cpu()


def discriminator_step(policy: Policy, batch: StepBatch, sampled: Tensor) -> dict[str, float | None]:
    """One clipped update of D: references of the batch's clips are real; G's samples (sampled (B K, L),
    K per clip, clip by clip), and references shown with another clip of the batch (so D must read the
    video), are fake. The loss weighs real and fake alike (half each; the two kinds of fake share their
    half), so a D that has learned nothing says P(real) = 0.5 and its accuracy at 0.5 means chance.
    Returns D's loss, its accuracy on references vs samples (threshold P = 0.5), and its mean P(real) of
    references, samples and mismatched references."""
    assert policy.adversary is not None
    discriminator, optimizer = policy.adversary.discriminator, policy.adversary.optimizer
    discriminator.train()
    B = len(batch.video_ids)
    video = mean_frame_feature(batch.feats, batch.mask)  # (B, F)
    real_tokens = batch.references[:, 1:]  # (B, L - 1): without BOS, like the samples
    other = torch.roll(torch.arange(B), 1)  # (B,) each row's neighbour in the batch
    mismatched = torch.tensor([batch.video_ids[i] != batch.video_ids[j] for i, j in enumerate(other.tolist())],
                              device=video.device)  # (B,) a different clip, not a repeat of the same one
    real = discriminator(real_tokens, video)  # (B,)
    fake = discriminator(sampled, repeat_clips(video, sampled.size(0) // B))  # (B K,)
    wrong = discriminator(real_tokens, video[other.to(video.device)])[mismatched]  # (M,)
    fakes = [F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))]
    if wrong.numel():
        fakes.append(F.binary_cross_entropy_with_logits(wrong, torch.zeros_like(wrong)))
    loss = 0.5 * F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + 0.5 * torch.stack(fakes).mean()
    value = float(loss.item())  # ln 2 = 0.69 at chance
    if math.isfinite(value):
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(discriminator.parameters(), policy.cfg.grad_clip)
        optimizer.step()
    real, fake, wrong = real.detach(), fake.detach(), wrong.detach()
    accuracy = 0.5 * float((real > 0).float().mean()) + 0.5 * float((fake <= 0).float().mean())  # balanced
    return {"d_loss": value, "d_accuracy": accuracy, "d_real_prob": float(torch.sigmoid(real).mean()),
            "d_fake_prob": float(torch.sigmoid(fake).mean()),
            "d_mismatched_prob": float(torch.sigmoid(wrong).mean()) if wrong.numel() else None}
