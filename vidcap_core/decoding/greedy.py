"""Greedy decoding over the model's `step()`."""

from __future__ import annotations

import torch
from torch import Tensor

from vidcap_core.decoding.common import (
    DecodeResult,
    eval_mode,
    next_token_logprobs,
    resolve_max_len,
)
from vidcap_core.models.base import CaptionModel
from vidcap_core.models.config import BOS_ID, EOS_ID


@torch.inference_mode()
def greedy_decode(
    model: CaptionModel, feats: Tensor, mask: Tensor | None = None, max_len: int | None = None
) -> DecodeResult:
    """Emit the most likely token at every step until EOS or `max_len` tokens (EOS included).

    feats (B, T, F) or (B, T, R, F), mask (B, T) bool or None. Runs in eval mode.
    """
    max_len = resolve_max_len(model, max_len)
    with eval_mode(model):
        memory = model.encode(feats, mask)
        state = model.init_state(memory)
        B = memory.batch_size
        device = memory.mask.device
        tokens = torch.full((B,), BOS_ID, dtype=torch.long, device=device)  # (B,)
        scores = torch.zeros(B, dtype=torch.float32, device=device)  # (B,)
        finished = torch.zeros(B, dtype=torch.bool, device=device)  # (B,)
        step_tokens: list[Tensor] = []
        step_alphas: list[Tensor | None] = []
        for _ in range(max_len):
            logits, state, alpha = model.step(tokens, state, memory)
            best, tokens = next_token_logprobs(logits).max(dim=-1)  # (B,), (B,)
            scores += best.masked_fill(finished, 0.0)
            step_tokens.append(tokens)
            step_alphas.append(alpha)
            finished |= tokens == EOS_ID
            if bool(finished.all()):
                break
    emitted = torch.stack(step_tokens, dim=1).tolist()  # (B, steps)
    lengths = [row.index(EOS_ID) if EOS_ID in row else len(row) for row in emitted]
    attention = None
    if step_alphas[0] is not None:
        alphas = torch.stack(step_alphas, dim=1).float().cpu().numpy()  # (B, steps, N)
        attention = [alphas[i, :n] for i, n in enumerate(lengths)]
    return DecodeResult(
        tokens=[row[:n] for row, n in zip(emitted, lengths)],
        scores=scores,
        attention=attention,
    )
