"""Teacher-forced caption loss as (sum of token NLL, token count), so ranks can share one mean."""

from __future__ import annotations

import torch
from torch import nn

from vidcap_core.models import masked_nll

PAD_ID = 0  # PAD_ID (docs/ARCHITECTURE.md)


def caption_loss(
    model: nn.Module,
    feats: torch.Tensor,  # (B, T, F)
    mask: torch.Tensor,  # (B, T) bool
    captions: torch.Tensor,  # (B, L) long, BOS w1 .. EOS PAD
    sampling_prob: float = 0.0,
    generator: torch.Generator | None = None,  # scheduled-sampling coin flips
) -> tuple[torch.Tensor, int]:
    """Summed NLL of every non-PAD target token, and how many there were.

    logits[:, i] predicts captions[:, i + 1]; the last position predicts nothing.
    """
    logits, _ = model(feats, mask, captions, sampling_prob=sampling_prob, generator=generator)  # (B, L, V)
    targets = captions[:, 1:]  # (B, L-1)
    n_tokens = int((targets != PAD_ID).sum())
    mean_nll = masked_nll(logits[:, :-1], targets, pad_id=PAD_ID)
    return mean_nll * n_tokens, n_tokens
