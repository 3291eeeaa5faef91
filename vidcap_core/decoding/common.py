"""What greedy and beam search share: the Hypothesis result, option checks, next-token log-probs, eval mode."""

from __future__ import annotations

import math
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
class Hypothesis:
    """One decoded caption of one clip; greedy and beam search both return these.

    `tokens` exclude BOS and EOS. `logprob` is the summed log-probability of the emitted
    tokens, EOS included when it was emitted. `score` ranks hypotheses: `logprob` divided by
    the GNMT length penalty (equal to `logprob` when length_penalty is 0). `attention` has
    one row of weights over the N memory slots per word, or is None for models without attention.
    `ended` is False for a hypothesis cut at the length limit before it emitted EOS (an unfinished
    sentence, which callers showing captions to people leave out when a finished one exists).
    """

    tokens: list[int]
    score: float
    logprob: float
    attention: np.ndarray | None  # (len(tokens), N) or None
    ended: bool = True


def check_decode_options(beam_size: int, n_best: int, length_penalty: float, no_repeat_ngram: int) -> None:
    """ConfigError naming the bad value; every decoder validates through this one function."""
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
        raise ConfigError(f"beam_size must be a positive integer (1 = greedy), got {beam_size!r}")
    if isinstance(n_best, bool) or not isinstance(n_best, int) or not 1 <= n_best <= beam_size:
        raise ConfigError(f"n_best must be between 1 and beam_size={beam_size}, got {n_best!r}")
    if (isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float))
            or not math.isfinite(length_penalty) or length_penalty < 0):
        raise ConfigError(f"length_penalty must be a finite number >= 0, got {length_penalty!r}")
    if isinstance(no_repeat_ngram, bool) or not isinstance(no_repeat_ngram, int) or no_repeat_ngram < 0:
        raise ConfigError(f"no_repeat_ngram must be an integer >= 0 (0 = off, N = no n-gram of N tokens twice), "
                          f"got {no_repeat_ngram!r}")


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
