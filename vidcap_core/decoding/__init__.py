"""Greedy and batched beam search over the caption models' shared `step()`; `decode` chooses.

Every decoder returns, per clip, a list of `Hypothesis` (tokens, score, logprob, attention), best
first. `predict` decodes stacked clip features into captions for validation and evaluation.
READABLE is the named decoding preset of captions for people (the demo, `vidcap caption`); it lives in
the torch-free `vidcap_core.options` so the CLI's `--help` can print it without loading torch.
"""

from vidcap_core.decoding.beam import beam_search, beam_search_unbatched
from vidcap_core.decoding.common import (
    Hypothesis,
    check_decode_options,
    gnmt_length_penalty,
    next_token_logprobs,
)
from vidcap_core.decoding.greedy import greedy_decode
from vidcap_core.decoding.ngram_block import block_repeated_ngrams
from vidcap_core.decoding.predict import Prediction, predict, predict_captions
from vidcap_core.decoding.search import decode
from vidcap_core.options import READABLE, DecodingPreset

__all__ = [
    "READABLE",
    "DecodingPreset",
    "Hypothesis",
    "Prediction",
    "beam_search",
    "beam_search_unbatched",
    "block_repeated_ngrams",
    "check_decode_options",
    "decode",
    "gnmt_length_penalty",
    "greedy_decode",
    "next_token_logprobs",
    "predict",
    "predict_captions",
]
