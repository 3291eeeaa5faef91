"""Greedy and batched beam search over the caption models' shared `step()`."""

from vidcap_core.decoding.beam import beam_search, beam_search_unbatched
from vidcap_core.decoding.common import (
    DecodeResult,
    Hypothesis,
    gnmt_length_penalty,
    next_token_logprobs,
)
from vidcap_core.decoding.greedy import greedy_decode

__all__ = [
    "DecodeResult",
    "Hypothesis",
    "beam_search",
    "beam_search_unbatched",
    "gnmt_length_penalty",
    "greedy_decode",
    "next_token_logprobs",
]
