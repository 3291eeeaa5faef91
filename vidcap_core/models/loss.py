"""Masked negative log-likelihood: the mean over real (non-PAD) target tokens."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from vidcap_core.models.config import PAD_ID


def masked_nll(logits: Tensor, targets: Tensor, pad_id: int = PAD_ID) -> Tensor:
    """logits (B, L, V), targets (B, L) -> scalar mean NLL over targets != pad_id.

    A batch with no real target token gives 0 (not NaN), without a host sync.
    """
    V = logits.size(-1)
    total = F.cross_entropy(
        logits.reshape(-1, V).float(),  # (B * L, V), float32 log-softmax even under autocast
        targets.reshape(-1),  # (B * L,)
        ignore_index=pad_id,
        reduction="sum",
    )
    count = (targets != pad_id).sum().clamp(min=1)
    return total / count
