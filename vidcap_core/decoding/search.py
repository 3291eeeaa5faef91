"""The one decoding entry point: greedy for beam 1, batched beam search otherwise."""

from __future__ import annotations

from torch import Tensor

from vidcap_core.decoding.beam import beam_search
from vidcap_core.decoding.common import Hypothesis, check_decode_options
from vidcap_core.decoding.greedy import greedy_decode
from vidcap_core.models.base import CaptionModel


def decode(
    model: CaptionModel,
    feats: Tensor,
    mask: Tensor | None = None,
    *,
    beam: int = 1,
    n_best: int = 1,
    length_penalty: float = 0.0,
    max_len: int | None = None,
    no_repeat_ngram: int = 0,
) -> list[list[Hypothesis]]:
    """Caption B clips: per clip, its `n_best` hypotheses best first (one when `beam` is 1).

    feats (B, T, F) or (B, T, R, F), mask (B, T) bool or None. `max_len` counts tokens with
    EOS (None = the model's own); `length_penalty` is the GNMT alpha (0 = raw log-prob sums);
    `no_repeat_ngram` N > 0 forbids any n-gram of N tokens twice in one caption (0 = off).
    Beam 1 is greedy decoding, which beam search with beam_size 1 equals exactly.
    """
    check_decode_options(beam, n_best, length_penalty, no_repeat_ngram)
    if beam == 1:
        return greedy_decode(model, feats, mask, max_len=max_len, length_penalty=length_penalty,
                             no_repeat_ngram=no_repeat_ngram)
    return beam_search(model, feats, mask, beam_size=beam, max_len=max_len, length_penalty=length_penalty,
                       n_best=n_best, no_repeat_ngram=no_repeat_ngram)
