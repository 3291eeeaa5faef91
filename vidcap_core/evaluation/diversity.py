"""How varied a model's captions are (the LSTM-GAN's [2] diversity claim), computed in one place.

Captions are tokenised as the caption metrics see them (sanitised, vidcap's PTB tokenizer:
`vidcap_core.evaluation.validation.python_tokens`), so "a Red circle." and "a red circle" are one
caption with the same words. The n-gram ratios are the "distinct-n" of Li et al. 2016: distinct
n-grams over all n-grams of the corpus (n-grams never cross caption boundaries). The benchmark's
`seeds` suite reports it for every run's test captions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from vidcap_core.evaluation.validation import python_tokens

DIVERSITY_COLUMNS = ("distinct_captions", "distinct_1", "distinct_2", "vocabulary")


@dataclass(frozen=True)
class Diversity:
    captions: int  # captions scored
    distinct_captions: int  # different token sequences among them
    distinct_1: float  # distinct words / words (NaN when there is no word)
    distinct_2: float  # distinct bigrams / bigrams (NaN when no caption has two words)
    vocabulary: int  # distinct words used

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """The n-grams of one caption, in order (none when it is shorter than n)."""
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def distinct_ratio(token_lists: Iterable[Sequence[str]], n: int) -> float:
    """Distinct n-grams / n-grams over a corpus of tokenised captions; NaN when it has no n-gram."""
    grams = [gram for tokens in token_lists for gram in ngrams(tokens, n)]
    return len(set(grams)) / len(grams) if grams else math.nan


def caption_diversity(captions: Iterable[str]) -> Diversity:
    """Diversity of one caption per clip (a model's test captions)."""
    tokens = [python_tokens(caption).split() for caption in captions]
    return Diversity(
        captions=len(tokens),
        distinct_captions=len({tuple(t) for t in tokens}),
        distinct_1=distinct_ratio(tokens, 1),
        distinct_2=distinct_ratio(tokens, 2),
        vocabulary=len({word for t in tokens for word in t}),
    )
