"""In-memory training data: preloaded features, encoded captions, seeded per-epoch pairs and frame orders.

Epoch design (the benchmark has ~3000 clips x 20 captions on a 2-core CPU): each epoch draws
`captions_per_video` captions of every training clip without replacement (None = every pair),
shuffles the pairs, and cuts them into global batches. All randomness of epoch `e` comes from
generators seeded with (seed, e, purpose), so an epoch is the same whether the run was resumed or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vidcap_core.data.records import VideoRecord
from vidcap_core.errors import FeatureError
from vidcap_core.features.store import FeatureStore

# Purposes keep the streams of one epoch independent of each other.
PAIRS_STREAM = 1
FRAMES_STREAM = 2
SAMPLING_STREAM = 3
EVAL_FRAMES_STREAM = 4  # frame order of a shuffled *evaluation* (no training epoch uses it)


@dataclass
class ClipFeatures:
    """Features of one split, stacked once. Frames past a clip's length are zero and masked out."""

    video_ids: list[str]
    feats: torch.Tensor  # (N, T, F) float32
    mask: torch.Tensor  # (N, T) bool, True for real frames (a prefix of each row)

    def __len__(self) -> int:
        return len(self.video_ids)


@dataclass
class EncodedCaptions:
    """All training captions as one padded id tensor, plus which clip each caption belongs to."""

    tokens: torch.Tensor  # (C, L) long: BOS w1 .. wn EOS PAD ..
    clip_index: np.ndarray  # (C,) int64 row of ClipFeatures each caption describes
    per_clip: list[np.ndarray]  # caption rows of each clip


def epoch_rng(seed: int, epoch: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, stream])


def stack_features(store: FeatureStore, records: Sequence[VideoRecord]) -> ClipFeatures:
    """Load every clip's (T, F) features from a FeatureStore into one (N, T, F) tensor."""
    arrays = [store.load(record.video_id) for record in records]  # each (T, F); FeatureError when missing
    if not arrays:
        return ClipFeatures([], torch.zeros(0, 1, 1), torch.zeros(0, 1, dtype=torch.bool))
    dims = {a.shape[1] for a in arrays}
    if len(dims) != 1:
        raise FeatureError(f"Feature files in {store.dir} disagree on the feature size ({sorted(dims)}); re-extract them.")
    max_frames = max(a.shape[0] for a in arrays)
    feats = torch.zeros(len(arrays), max_frames, dims.pop())  # (N, T, F)
    mask = torch.zeros(len(arrays), max_frames, dtype=torch.bool)  # (N, T)
    for row, array in enumerate(arrays):
        feats[row, : array.shape[0]] = torch.from_numpy(array)
        mask[row, : array.shape[0]] = True
    return ClipFeatures([r.video_id for r in records], feats, mask)


def encode_captions(vocab, records: Sequence[VideoRecord], max_len: int) -> EncodedCaptions:
    """Encode each record's captions with BOS/EOS, padded to the longest (at most max_len + 2)."""
    rows: list[list[int]] = []
    clip_index: list[int] = []
    per_clip: list[np.ndarray] = []
    for clip, record in enumerate(records):
        start = len(rows)
        for caption in record.captions:
            rows.append(list(vocab.encode(caption, max_len)))
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


def frame_order_index(mask: torch.Tensor, order: str, rng: np.random.Generator | None) -> torch.Tensor:
    """Per-clip frame index (N, T): identity, the real frames reversed, or the real frames permuted.

    Padding frames stay where they are so the mask still marks a prefix.
    """
    n_clips, n_frames = mask.shape
    index = torch.arange(n_frames).repeat(n_clips, 1)  # (N, T)
    if order == "ordered":
        return index
    lengths = mask.sum(dim=1).tolist()
    for row, length in enumerate(lengths):
        if order == "reversed":
            index[row, :length] = torch.arange(length - 1, -1, -1)
        elif order == "shuffled":
            assert rng is not None, "shuffled frame order needs a seeded generator"
            index[row, :length] = torch.from_numpy(rng.permutation(length))
        else:
            raise ValueError(f"frame order {order!r} is not one of ordered, shuffled, reversed")
    return index


def gather_frames(feats: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """feats (B, T, F) reordered along T by index (B, T)."""
    return feats.gather(1, index.unsqueeze(-1).expand(-1, -1, feats.shape[-1]))  # (B, T, F)


def split_for_rank(batch: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """This rank's contiguous share of one global batch (the shares cover it exactly once)."""
    return np.array_split(batch, world_size)[rank]
