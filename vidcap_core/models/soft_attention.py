"""Additive (Bahdanau) soft attention over memory slots: frames, or frames x regions."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SoftAttention(nn.Module):
    """`score_n = w^T tanh(W_m m_n + W_q q)`; returns `(context, alpha)` so weights can be plotted.

    The memory projection `W_m m` does not depend on the query, so callers compute it once
    per sequence with `project()` and pass it to every step (self-critical's `p_att_feats`).
    """

    def __init__(self, memory_dim: int, query_dim: int, attention_size: int) -> None:
        super().__init__()
        self.memory_proj = nn.Linear(memory_dim, attention_size)
        self.query_proj = nn.Linear(query_dim, attention_size, bias=False)
        self.score = nn.Linear(attention_size, 1, bias=False)

    def project(self, memory: Tensor) -> Tensor:
        return self.memory_proj(memory)  # (B, N, M) -> (B, N, A)

    def forward(self, query: Tensor, memory: Tensor, projected: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """query (B, Q), memory (B, N, M), projected (B, N, A), mask (B, N) bool.

        Masked slots get weight exactly 0 (score -inf before the softmax); every row of
        `mask` must have at least one valid slot.
        """
        hidden = torch.tanh(projected + self.query_proj(query).unsqueeze(1))  # (B, N, A)
        alpha = attention_weights(hidden, self.score.weight, mask)  # (B, N), rows sum to 1
        context = torch.bmm(alpha.unsqueeze(1), memory).squeeze(1)  # (B, 1, N) @ (B, N, M) -> (B, M)
        return context, alpha


def attention_weights(hidden: Tensor, score_weight: Tensor, mask: Tensor | None) -> Tensor:
    """hidden (B, N, A) = tanh(W_m m + W_q q), score_weight (1, A) = w^T, mask (B, N) bool or None (all
    valid) -> softmax over the slots of w^T hidden, masked slots exactly 0: alpha (B, N).

    Shared by `SoftAttention.forward` and the teacher-forced attention decoder (attention_decoder.py),
    which must compute the same numbers."""
    B, N, A = hidden.shape
    scores = torch.mv(hidden.reshape(B * N, A), score_weight.view(A)).view(B, N)  # (B, N)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)
