"""Repetition blocking: no n-gram may appear twice in one caption (fairseq / HF `no_repeat_ngram_size`)."""

from __future__ import annotations

import torch
from torch import Tensor


def block_repeated_ngrams(logprobs: Tensor, history: Tensor, n: int) -> Tensor:
    """logprobs (R, V) with every token that would repeat an n-gram of its row set to -inf.

    R rows are clips (greedy) or beams (beam search); history (R, t) holds the tokens each row
    emitted so far, BOS excluded. Token x is blocked in row r when the last n - 1 tokens of
    history[r] followed by x already occur as an n-gram in history[r]. n = 0 turns blocking off;
    n = 1 forbids any token twice. Batched over all rows: no Python loop over rows or n-grams.
    """
    R, t = history.shape
    if n == 0 or t < n:  # fewer than n tokens: no complete n-gram to repeat yet
        return logprobs
    followers = history[:, n - 1 :]  # (R, G) last token of each of the G = t - n + 1 n-grams
    if n == 1:
        seen = torch.ones_like(followers, dtype=torch.bool)  # (R, G) every emitted token is a 1-gram
    else:
        prefixes = history.unfold(1, n - 1, 1)[:, : t - n + 1]  # (R, G, n - 1) first n - 1 tokens of each n-gram
        suffix = history[:, t - n + 1 :]  # (R, n - 1) what the next token would extend
        seen = (prefixes == suffix.unsqueeze(1)).all(dim=-1)  # (R, G)
    # scatter_add, not scatter: a token can follow several prefixes, matching and not
    hits = torch.zeros_like(logprobs).scatter_add_(1, followers, seen.to(logprobs.dtype))  # (R, V)
    return logprobs.masked_fill(hits > 0, float("-inf"))
