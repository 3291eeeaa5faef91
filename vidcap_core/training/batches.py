"""In-memory training data: encoded captions, seeded per-epoch pairs, each rank's share of a batch.

Epoch design (the benchmark has ~3000 clips x 20 captions on a 2-core CPU): each epoch draws
`captions_per_video` captions of every training clip without replacement (None = every pair),
shuffles the pairs, and cuts them into global batches. All randomness of epoch `e` comes from
generators seeded with (seed, e, purpose), so an epoch is the same whether the run was resumed or not.
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


def epoch_caption_order(captions: EncodedCaptions, captions_per_video: int | None, seed: int, epoch: int) -> np.ndarray:
    """Caption rows to train on this epoch, in their shuffled order: (P,) int64."""
    rng = epoch_rng(seed, epoch, PAIRS_STREAM)
    if captions_per_video is None:
        chosen = np.arange(len(captions.tokens), dtype=np.int64)
    else:
        picks = [rng.choice(rows, size=min(captions_per_video, len(rows)), replace=False)
                 for rows in captions.per_clip if len(rows)]
        chosen = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    return chosen[rng.permutation(len(chosen))]


def split_for_rank(batch: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """This rank's contiguous share of one global batch (the shares cover it exactly once)."""
    return np.array_split(batch, world_size)[rank]
