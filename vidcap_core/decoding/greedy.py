"""Greedy decoding over the model's `step()`."""

from __future__ import annotations

import torch
from torch import Tensor

from vidcap_core.decoding.common import (
    Hypothesis,
    check_decode_options,
    eval_mode,
    gnmt_length_penalty,
    next_token_logprobs,
    resolve_max_len,
)
from vidcap_core.decoding.ngram_block import block_repeated_ngrams
from vidcap_core.models.base import CaptionModel
from vidcap_core.models.config import BOS_ID, EOS_ID


@torch.inference_mode()
def greedy_decode(
    model: CaptionModel,
    feats: Tensor,
    mask: Tensor | None = None,
    max_len: int | None = None,
    length_penalty: float = 0.0,
    no_repeat_ngram: int = 0,
) -> list[list[Hypothesis]]:
    """One hypothesis per clip: the most likely token at every step until EOS or `max_len`
    tokens (EOS included), never repeating an n-gram of `no_repeat_ngram` tokens (0 = off).

    feats (B, T, F) or (B, T, R, F), mask (B, T) bool or None. Runs in eval mode. The choice
    ignores `length_penalty`; it only scales `score` as beam search would, so beam size 1
    gives exactly this result.
    """
    check_decode_options(1, 1, length_penalty, no_repeat_ngram)
    max_len = resolve_max_len(model, max_len)
    with eval_mode(model):
        memory = model.encode(feats, mask)
        state = model.init_state(memory)
        B = memory.batch_size
        device = memory.mask.device
        tokens = torch.full((B,), BOS_ID, dtype=torch.long, device=device)  # (B,)
        logprob = torch.zeros(B, dtype=torch.float32, device=device)  # (B,)
        finished = torch.zeros(B, dtype=torch.bool, device=device)  # (B,)
        history = torch.zeros(B, 0, dtype=torch.long, device=device)  # (B, t)
        step_alphas: list[Tensor | None] = []
        for _ in range(max_len):
            logits, state, alpha = model.step(tokens, state, memory)
            logprobs = block_repeated_ngrams(next_token_logprobs(logits), history, no_repeat_ngram)  # (B, V)
            best, tokens = logprobs.max(dim=-1)  # (B,), (B,)
            logprob += best.masked_fill(finished, 0.0)
            history = torch.cat([history, tokens.unsqueeze(1)], dim=1)  # (B, t + 1)
            step_alphas.append(alpha)
            finished |= tokens == EOS_ID
            if bool(finished.all()):
                break
    emitted = history.tolist()  # (B, steps)
    alphas = None
    if step_alphas[0] is not None:
        alphas = torch.stack(step_alphas, dim=1).float().cpu().numpy()  # (B, steps, N)
    out: list[list[Hypothesis]] = []
    for i, (row, total) in enumerate(zip(emitted, logprob.tolist())):
        ended = EOS_ID in row
        n = row.index(EOS_ID) if ended else len(row)  # an unended row ran all max_len steps
        length = n + 1 if ended else n  # the length beam search penalises: EOS counts
        out.append([Hypothesis(
            tokens=row[:n],
            score=total / gnmt_length_penalty(length, length_penalty),
            logprob=total,
            attention=None if alphas is None else alphas[i, :n],
            ended=ended,
        )])
    return out
