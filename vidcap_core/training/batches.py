"""In-memory training data: encoded captions, the caption length limit, the batch of each step,
each rank's share of a batch.

Data order: a data epoch is every (clip, caption) pair of the training split once, shuffled, cut
into `steps_per_epoch` full global batches (the remainder, different pairs each epoch, waits for a
later epoch); step s trains on batch s % steps_per_epoch of epoch s // steps_per_epoch. The run's
length is a budget of steps (loop.py says why), so a step's batch is a function of (seed, step)
alone and a run resumed at any validation continues the same sequence. All randomness of data
epoch `e` comes from generators seeded with (seed, e, purpose).
Clip features (ClipFeatures, stack_features, frame orders, the seeded streams) live in
vidcap_core.features.clips, shared with inference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vidcap_core.data.records import VideoRecord
from vidcap_core.features.clips import PAIRS_STREAM, epoch_rng
from vidcap_core.text import tokenize


@dataclass
class EncodedCaptions:
    """All training captions as one padded id tensor, plus which clip each caption belongs to."""

    tokens: torch.Tensor  # (C, L) long: BOS w1 .. wn EOS PAD ..
    clip_index: np.ndarray  # (C,) int64 row of ClipFeatures each caption describes
    per_clip: list[np.ndarray]  # caption rows of each clip


def encode_captions(vocab, records: Sequence[VideoRecord], max_words: int) -> EncodedCaptions:
    """Encode each record's captions with BOS/EOS, padded to the longest (at most max_words + 2)."""
    rows: list[list[int]] = []
    clip_index: list[int] = []
    per_clip: list[np.ndarray] = []
    for clip, record in enumerate(records):
        start = len(rows)
        for caption in record.captions:
            rows.append(list(vocab.encode(caption, max_words)))
            clip_index.append(clip)
        per_clip.append(np.arange(start, len(rows), dtype=np.int64))
    width = max((len(r) for r in rows), default=2)
    tokens = torch.zeros(len(rows), width, dtype=torch.long)  # (C, L), PAD = 0
    for i, row in enumerate(rows):
        tokens[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return EncodedCaptions(tokens, np.asarray(clip_index, dtype=np.int64), per_clip)


def epoch_caption_order(captions: EncodedCaptions, seed: int, epoch: int) -> np.ndarray:
    """Every caption row, in data epoch `epoch`'s shuffled order: (P,) int64.

    Every pair, not a sample of captions per clip: sampling 1-2 of a clip's 12-20 captions per epoch
    starved the benchmark's models (about 300 optimizer steps per run, issue #11).
    """
    rng = epoch_rng(seed, epoch, PAIRS_STREAM)
    return rng.permutation(len(captions.tokens)).astype(np.int64)


def steps_per_epoch(pairs: int, batch_size: int) -> int:
    """Full global batches in one data epoch (at least one: a tiny dataset trains on all its pairs)."""
    return max(1, pairs // batch_size)


def step_position(step: int, pairs: int, batch_size: int) -> tuple[int, slice]:
    """(data epoch, slice of that epoch's order) that global step `step` (0-based) trains on."""
    per_epoch = steps_per_epoch(pairs, batch_size)
    epoch, index = divmod(step, per_epoch)
    return epoch, slice(index * batch_size, (index + 1) * batch_size)


@dataclass(frozen=True)
class CaptionLimit:
    """The caption length limit of a run and where it came from."""

    max_words: int
    source: str  # "data" (the longest training caption) or "config" (an explicit max_caption_words)
    longest_training_caption: int  # words
    truncated_captions: int  # training captions longer than max_words (0 when source is "data")
    training_captions: int

    def to_dict(self) -> dict[str, int | str]:
        return {"max_caption_words": self.max_words, "source": self.source,
                "longest_training_caption": self.longest_training_caption,
                "truncated_captions": self.truncated_captions, "training_captions": self.training_captions}


def resolve_caption_limit(records: Sequence[VideoRecord], configured: int | None) -> CaptionLimit:
    """`configured`, or when None the longest training caption in tokenizer words.

    The longest, not a percentile: on SynthClips standard (1200 clips, 10,080 training captions) the
    longest has 28 words and the 99.9th percentile 27, so any percentile would cut the end of some
    three-event caption, while training on one more token position costs nothing measurable (batches
    are trimmed to their longest caption) and decoding stops at EOS long before on any trained model.
    """
    lengths = [len(tokenize(c)) for r in records for c in r.captions]
    longest = max(lengths, default=1)
    max_words = longest if configured is None else configured
    return CaptionLimit(max_words=max(1, max_words), source="data" if configured is None else "config",
                        longest_training_caption=longest,
                        truncated_captions=sum(n > max_words for n in lengths), training_captions=len(lengths))


def split_for_rank(batch: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """This rank's contiguous share of one global batch (the shares cover it exactly once)."""
    return np.array_split(batch, world_size)[rank]
