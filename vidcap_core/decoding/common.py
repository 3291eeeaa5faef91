"""What greedy and beam search share: result types, next-token log-probs, eval mode."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from vidcap_core.errors import ConfigError
from vidcap_core.models.base import CaptionModel
from vidcap_core.models.config import BOS_ID, PAD_ID


@dataclass
class DecodeResult:
    """Greedy output for B clips. Tokens exclude BOS and EOS.

    `scores` (B,) is the summed log-probability of the emitted tokens, EOS included when it
    was emitted. `attention[i]` is (len(tokens[i]), N): one row of weights per word.
    """

    tokens: list[list[int]]
    scores: Tensor
    attention: list[np.ndarray] | None


@dataclass
class Hypothesis:
    """One beam-search caption. `score` ranks hypotheses (length-penalised `logprob`)."""

    tokens: list[int]
    score: float
    logprob: float
    attention: np.ndarray | None  # (len(tokens), N) or None


def next_token_logprobs(logits: Tensor) -> Tensor:
    """logits (B, V) -> log-probs (B, V) in float32; PAD and BOS can never be emitted.

    The two are set to -inf without renormalising, so scores stay the model's log-probs.
    """
    logprobs = torch.log_softmax(logits.float(), dim=-1)  # (B, V)
    logprobs[:, PAD_ID] = float("-inf")
    logprobs[:, BOS_ID] = float("-inf")
    return logprobs


def resolve_max_len(model: CaptionModel, max_len: int | None) -> int:
    max_len = model.config.max_tokens if max_len is None else max_len
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ConfigError(f"max_len must be a positive integer, got {max_len!r}")
    return max_len


def gnmt_length_penalty(length: int, alpha: float) -> float:
    """Wu et al. 2016: ((5 + |Y|) / 6) ** alpha; alpha = 0 gives 1 (raw log-prob sums)."""
    return ((5.0 + length) / 6.0) ** alpha


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Decode without dropout, then give the model back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
