"""Gradient-flow probe (Pascanu et al., 2013): how strongly the caption loss reaches each input frame.

For a fixed batch, x = the input features with requires_grad and L = the teacher-forced caption
loss; the probe returns ||dL/dx_t|| for each frame t, the norm taken over the batch and feature
dimensions. A recurrent encoder whose early frames get vanishing norms forgets the clip's start;
a mean-pooling encoder gives every real frame the same norm by symmetry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vidcap_core.training.loss import caption_loss


@dataclass
class ProbeBatch:
    """The fixed batch the probe uses for the whole run."""

    feats: torch.Tensor  # (B, T, F)
    mask: torch.Tensor  # (B, T) bool
    captions: torch.Tensor  # (B, L) long, BOS .. EOS PAD


def frame_gradient_norms(model: nn.Module, batch: ProbeBatch) -> np.ndarray:
    """||dL/dx_t|| for t = 0..T-1 as a (T,) float64 array; dropout off, parameters untouched."""
    was_training = model.training
    model.eval()
    try:
        feats = batch.feats.detach().clone().requires_grad_(True)  # (B, T, F)
        with torch.enable_grad():
            loss_sum, n_tokens = caption_loss(model, feats, batch.mask, batch.captions)
            (grad,) = torch.autograd.grad(loss_sum / max(n_tokens, 1), feats)  # (B, T, F)
        norms = grad.pow(2).flatten(2).sum(dim=(0, 2)).sqrt()  # (T,): over clips, [regions,] features
    finally:
        model.train(was_training)
    return norms.detach().cpu().double().numpy()
