"""The policy-gradient step of fine-tuning a pretrained captioner G: one REINFORCE update with a
reward from either source, self-critical sequence training (SCST, Rennie et al. 2017; training/scst.py)
or the LSTM-GAN's discriminator [2] (training/adversarial.py). The run around it (data order,
validation, resume) is training/finetune.py; its stop rules are training/collapse.py.

Each step, for a batch of (clip, reference) pairs in the MLE loop's data order:
1. G samples K = `samples` captions per clip (decoding/sampling.py: multinomial over `step()` at
   `temperature`, seeded per step; with G's dropout off unless `sample_dropout`), encoding each clip
   once and expanding its memory K times (self-critical.pytorch's way);
2. the reward source learns from the batch (D's updates, adversarial) and scores each sampled caption
   (`RewardSource.rewards`);
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
the two methods share this step.

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from vidcap_core.decoding.greedy import greedy_decode
from vidcap_core.decoding.sampling import sample_captions
from vidcap_core.features.clips import POLICY_SAMPLING_STREAM, epoch_rng, gather_frames
from vidcap_core.models import EOS_ID, PAD_ID, CaptionModel
from vidcap_core.training.auxiliary import training_objective
from vidcap_core.training.config import TrainConfig
from vidcap_core.training.finetune_config import FinetuneConfig
from vidcap_core.training.loop import DIVERGED_LOSS, TrainingData, trim_padding


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


class RewardSource(Protocol):
    """What scores G's captions: SCST's text reward (scst.TextRewardSource) or the LSTM-GAN's
    discriminator (adversarial.Adversary)."""

    def update(self, batch: StepBatch, sampled: Tensor) -> dict[str, float | None]:
        """Learn from this batch and G's samples of it (sampled (B K, L), K per clip, clip by clip) before G
        moves; returns what it measured (D's loss and accuracy), {} when the reward does not learn."""
        ...

    def rewards(self, batch: StepBatch, tokens: Tensor, per_clip: int) -> Tensor:
        """The reward of each caption of its clip: tokens (B * per_clip, L), words then EOS, PAD after, rows
        b * per_clip .. b * per_clip + per_clip - 1 are clip b's -> (B * per_clip,) float32 on the CPU."""
        ...


@dataclass
class Policy:
    """Everything a fine-tuning step needs besides the batch."""

    cfg: TrainConfig
    ft: FinetuneConfig
    model: CaptionModel
    optimizer: torch.optim.Optimizer
    data: TrainingData
    device: torch.device
    reward: RewardSource
    params: list[nn.Parameter] = field(default_factory=list)


def step_batch(data: TrainingData, rows: np.ndarray, frame_index: Tensor, device: torch.device) -> StepBatch:
    """Pairs `rows` of the training captions, their clips' frames in `frame_index`'s order, on `device`."""
    clips = data.captions.clip_index[rows]  # (B,)
    return StepBatch(
        feats=gather_frames(data.train.feats[clips], frame_index[clips]).to(device),  # (B, T, F)
        mask=data.train.mask[clips].to(device),  # (B, T)
        references=trim_padding(data.captions.tokens[rows]).to(device),  # (B, L)
        clip_ids=torch.from_numpy(clips).to(device),  # (B,)
        video_ids=[data.train.video_ids[c] for c in clips],
    )


def policy_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    """The caption sampler's generator of one step, independent of dropout's global RNG."""
    seed_value = int(epoch_rng(seed, step, POLICY_SAMPLING_STREAM).integers(2**62))
    return torch.Generator(device=device).manual_seed(seed_value)


def policy_step(policy: Policy, batch: StepBatch, generator: torch.Generator) -> StepStats:
    """Sample K captions per clip, let the reward source learn, reward, baseline, one clipped update of G on
    the mixed loss; refused (diverged_reason set, G not updated) when a loss or the gradient norm is not
    finite."""
    cfg, ft, model = policy.cfg, policy.ft, policy.model
    B, K = len(batch.video_ids), ft.samples
    model.train(ft.sample_dropout)
    sample = sample_captions(model, batch.feats, batch.mask, generator=generator, max_len=cfg.max_tokens,
                             temperature=ft.temperature, per_clip=K)  # (B K, L): rows b * K .. b * K + K - 1 clip b's
    model.train()
    greedy = greedy_tokens(model, batch.feats, batch.mask, cfg.max_tokens) if ft.baseline == "greedy" else None
    learned = policy.reward.update(batch, sample.tokens.detach())
    d_loss = learned.get("d_loss")
    if d_loss is not None and not math.isfinite(d_loss):
        return refused(f"discriminator loss {d_loss}", learned)
    reward = policy.reward.rewards(batch, sample.tokens, K)  # (B K,)
    rewards = reward.view(B, K)  # (B, K)
    if greedy is None:
        baseline = leave_one_out_baseline(rewards)  # (B, K)
    else:
        baseline = policy.reward.rewards(batch, greedy, 1).unsqueeze(1).expand(B, K)  # (B, K)
    advantage = (rewards - baseline).reshape(B * K).to(batch.feats.device)  # (B K,)
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
                       f"{DIVERGED_LOSS:g}", learned)
    policy.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = float(torch.nn.utils.clip_grad_norm_(policy.params, cfg.grad_clip))
    if not math.isfinite(norm):
        return refused(f"gradient norm {norm}", learned)
    policy.optimizer.step()
    return StepStats(
        loss=values[0], mle_loss=values[1], pg_loss=values[2], reward=float(rewards.mean()),
        baseline=float(baseline.mean()), advantage_std=float(advantage.std(unbiased=False)),
        sample_tokens=float(sample.mask.sum(1).float().mean()), grad_norm=norm,
        reward_best=float(rewards.max(1).values.mean()), **learned,
    )


def leave_one_out_baseline(rewards: Tensor) -> Tensor:
    """Each sample's baseline: the mean reward of the other K - 1 samples of its clip (Luo 2020, "A better
    variant of self-critical sequence training"). rewards (B, K), K >= 2 -> (B, K). The advantages of a
    clip sum to zero: its better-than-average samples are pushed up, the others down, by as much."""
    K = rewards.size(1)
    return (rewards.sum(dim=1, keepdim=True) - rewards) / (K - 1)  # (B, K)


def refused(reason: str, learned: dict[str, float | None]) -> StepStats:
    nan = math.nan
    return StepStats(loss=nan, mle_loss=nan, pg_loss=nan, reward=nan, baseline=nan, advantage_std=nan,
                     sample_tokens=nan, grad_norm=nan, diverged_reason=reason, **learned)


def greedy_tokens(model: CaptionModel, feats: Tensor, mask: Tensor, max_len: int) -> Tensor:
    """G's greedy captions as sampled rows look: words, then EOS where one was emitted, PAD after: (B, L)."""
    hypotheses = greedy_decode(model, feats, mask, max_len=max_len)
    rows = [h[0].tokens + ([EOS_ID] if len(h[0].tokens) < max_len else []) for h in hypotheses]
    out = torch.full((len(rows), max(len(r) for r in rows)), PAD_ID, dtype=torch.long)  # (B, L)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out.to(feats.device)
