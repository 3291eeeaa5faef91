"""The LSTM-GAN's reward source [2]: a discriminator D (models/discriminator.py) that learns to tell
references from G's samples, and whose P(real) of a sampled caption is that caption's reward in the
policy-gradient step (training/policy_gradient.py).

D is pretrained for `d_pretrain_epochs` on references vs G's samples (and references paired with another
clip's video, so D must look at the clip) before G moves; then each step updates D `d_steps` times on the
batch (all K samples of each clip are fakes), then G once. Real and fake weigh half of D's loss each, so
an uninformed D says P(real) = 0.5.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidcap_core.decoding.sampling import sample_captions
from vidcap_core.errors import ConfigError
from vidcap_core.features.clips import DISCRIMINATOR_STREAM, FRAMES_STREAM, epoch_rng, frame_order_index
from vidcap_core.models import repeat_each
from vidcap_core.models.discriminator import CaptionDiscriminator, DiscriminatorConfig, mean_frame_feature
from vidcap_core.training.batches import step_position, steps_per_epoch
from vidcap_core.training.finetune_config import FinetuneConfig
from vidcap_core.training.loop import TrainingData, mean_or_none
from vidcap_core.training.policy_gradient import Policy, StepBatch, step_batch

D_MEASURES = ("d_loss", "d_accuracy", "d_real_prob", "d_fake_prob", "d_mismatched_prob")


class Adversary:
    """The LSTM-GAN's RewardSource: the discriminator, its optimizer, and how it is updated."""

    def __init__(self, discriminator: CaptionDiscriminator, optimizer: torch.optim.Optimizer, steps: int,
                 grad_clip: float) -> None:
        self.discriminator = discriminator
        self.optimizer = optimizer
        self.steps = steps  # D's updates per step of G
        self.grad_clip = grad_clip

    def update(self, batch: StepBatch, sampled: Tensor) -> dict[str, float | None]:
        """`steps` updates of D on the batch; what the last one measured."""
        measured: dict[str, float | None] = {}
        for _ in range(self.steps):
            measured = discriminator_step(self, batch, sampled)
        return measured

    def rewards(self, batch: StepBatch, tokens: Tensor, per_clip: int) -> Tensor:
        """D's P(real) of each caption (tokens (B * per_clip, L)) of its clip: (B * per_clip,) float32 on the
        CPU, D in eval mode."""
        video = repeat_each(mean_frame_feature(batch.feats, batch.mask), per_clip)  # (B per_clip, F)
        was_training = self.discriminator.training
        self.discriminator.eval()
        with torch.no_grad():
            reward = torch.sigmoid(self.discriminator(tokens.detach(), video))  # (N,)
        self.discriminator.train(was_training)
        return reward.float().cpu()

    def checkpoint_parts(self) -> dict[str, Any]:
        """What last.pt carries of D."""
        return {"discriminator": self.discriminator.state_dict(),
                "discriminator_optimizer": self.optimizer.state_dict(),
                "discriminator_config": self.discriminator.config.to_dict()}

    def restore(self, payload: dict[str, Any], path: Path) -> None:
        """D and its optimizer from last.pt's `payload` (read from `path`)."""
        try:
            self.discriminator.load_state_dict(payload["discriminator"])
        except RuntimeError as exc:  # a D of an older layout (before the caption x clip term)
            raise ConfigError(f"{path} holds a discriminator of another layout than this version builds ({exc}); "
                              "start the fine-tune over with --no-resume or use another --out.") from exc
        self.optimizer.load_state_dict(payload["discriminator_optimizer"])


def build_adversary(ft: FinetuneConfig, data: TrainingData, grad_clip: float, device: torch.device) -> Adversary:
    """A freshly initialised D (from the global seed) for this data's vocabulary and features."""
    config = DiscriminatorConfig(vocab_size=len(data.vocab), feature_dim=int(data.train.feats.shape[-1]),
                                 embed_size=ft.d_embed_size, filters=ft.d_filters, video_size=ft.d_video_size,
                                 hidden_size=ft.d_hidden_size, dropout=ft.d_dropout)
    discriminator = CaptionDiscriminator(config).to(device)
    return Adversary(discriminator, torch.optim.Adam(discriminator.parameters(), lr=ft.d_lr), ft.d_steps, grad_clip)


def discriminator_step(adversary: Adversary, batch: StepBatch, sampled: Tensor) -> dict[str, float | None]:
    """One clipped update of D: references of the batch's clips are real; G's samples (sampled (B K, L),
    K per clip, clip by clip), and references shown with another clip of the batch (so D must read the
    video), are fake. The loss weighs real and fake alike (half each; the two kinds of fake share their
    half), so a D that has learned nothing says P(real) = 0.5 and its accuracy at 0.5 means chance.
    Returns D's loss, its accuracy on references vs samples (threshold P = 0.5), and its mean P(real) of
    references, samples and mismatched references."""
    discriminator, optimizer = adversary.discriminator, adversary.optimizer
    discriminator.train()
    B = len(batch.video_ids)
    video = mean_frame_feature(batch.feats, batch.mask)  # (B, F)
    real_tokens = batch.references[:, 1:]  # (B, L - 1): without BOS, like the samples
    other = torch.roll(torch.arange(B), 1)  # (B,) each row's neighbour in the batch
    mismatched = torch.tensor([batch.video_ids[i] != batch.video_ids[j] for i, j in enumerate(other.tolist())],
                              device=video.device)  # (B,) a different clip, not a repeat of the same one
    real = discriminator(real_tokens, video)  # (B,)
    fake = discriminator(sampled, repeat_each(video, sampled.size(0) // B))  # (B K,)
    wrong = discriminator(real_tokens, video[other.to(video.device)])[mismatched]  # (M,)
    fakes = [F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))]
    if wrong.numel():
        fakes.append(F.binary_cross_entropy_with_logits(wrong, torch.zeros_like(wrong)))
    loss = 0.5 * F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + 0.5 * torch.stack(fakes).mean()
    value = float(loss.item())  # ln 2 = 0.69 at chance
    if math.isfinite(value):
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(discriminator.parameters(), adversary.grad_clip)
        optimizer.step()
    real, fake, wrong = real.detach(), fake.detach(), wrong.detach()
    accuracy = 0.5 * float((real > 0).float().mean()) + 0.5 * float((fake <= 0).float().mean())  # balanced
    return {"d_loss": value, "d_accuracy": accuracy, "d_real_prob": float(torch.sigmoid(real).mean()),
            "d_fake_prob": float(torch.sigmoid(fake).mean()),
            "d_mismatched_prob": float(torch.sigmoid(wrong).mean()) if wrong.numel() else None}


def pretrain_discriminator(policy: Policy, adversary: Adversary) -> dict[str, Any]:
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
        d = discriminator_step(adversary, batch, sample.tokens)
        if not math.isfinite(d["d_loss"]):
            return {"d_pretrain_steps": step + 1, "d_loss": d["d_loss"], "d_accuracy": None,
                    "diverged_reason": f"discriminator pretraining loss {d['d_loss']} at step {step + 1}"}
        measured.append(d)
    last = measured[-per_epoch:]
    means = {name: mean_or_none([d[name] for d in last if d[name] is not None]) for name in D_MEASURES}
    return {"d_pretrain_steps": total, **means, "diverged_reason": None}
