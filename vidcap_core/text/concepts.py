"""Visual concepts named by captions, for the concepts arch's multi-label head (models/concepts.py).

[1] scores COCO's object categories; a captioning dataset has no such labels, but its captions name
what is visible. On real data (MSVD, MSR-VTT, csv) the concepts are the K content words that the
most training clips' captions use: no part-of-speech tagger is installed, so "nouns and verbs" is
approximated by every caption token that is a word (letters, inner hyphens) and not on the
stop-word list below (function words, auxiliaries, pronouns, and caption boilerplate such as
"video" or "someone"). What passes is mostly nouns and verbs ("man", "guitar", "playing"), plus
visual adjectives ("red", "small"), which are concepts too. Frequency counts clips, not tokens, so
a word repeated in twenty captions of one clip does not outrank a word of many clips; ties go
alphabetically, so the vocabulary is a function of the captions alone. Inflections stay apart
("plays", "playing"): without a lemmatizer, merging them would be a guess.
SynthClips names its concepts exactly (synth/concepts.py); training/auxiliary.py picks which.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from vidcap_core.text.tokenizer import tokenize

# English function words (NLTK's list and a few more adverbs) plus caption boilerplate (last line).
STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most
my myself no nor not now of off on once only or other our ours ourselves out over own same she
should so some such than that the their theirs them themselves then there these they this those
through to too under until up very was we were what when where which while who whom why will with
would you your yours yourself yourselves also another around away back else ever every here's
it's let's many much must onto per since still that's there's though thus toward towards upon
us via whether within without yet
video videos clip clips someone somebody something thing things one ones
""".split())
_WORD = re.compile(r"[a-z][a-z-]*[a-z]")  # two letters or more, inner hyphens allowed


def content_words(caption: str) -> set[str]:
    """The caption's distinct tokens that are words and not stop words."""
    return {token for token in tokenize(caption) if _WORD.fullmatch(token) and token not in STOP_WORDS}


def frequent_content_words(captions_per_clip: Sequence[Sequence[str]], k: int, min_clips: int = 2) -> list[str]:
    """The `k` content words named by the most clips (at least `min_clips`), most frequent first, ties
    alphabetical. `captions_per_clip[i]` are clip i's captions."""
    clip_counts: Counter[str] = Counter()
    for captions in captions_per_clip:
        clip_counts.update(set().union(set(), *(content_words(c) for c in captions)))
    ranked = sorted((word for word, n in clip_counts.items() if n >= min_clips), key=lambda w: (-clip_counts[w], w))
    return ranked[:k]


def multi_hot(named_per_clip: Iterable[set[str]], concepts: Sequence[str]) -> np.ndarray:
    """(N, C) float32: 1 where clip n names concept c; concepts outside the vocabulary are ignored."""
    column = {name: j for j, name in enumerate(concepts)}
    rows = list(named_per_clip)
    labels = np.zeros((len(rows), len(concepts)), dtype=np.float32)
    for i, named in enumerate(rows):
        labels[i, [column[name] for name in named if name in column]] = 1.0
    return labels
