"""Cached features of many clips stacked into one padded tensor, and reordering their frames.

Training and inference (evaluation, validation) both read clips this way, so it lives below both.
Seeded streams: all randomness of epoch `e` comes from generators seeded with (seed, e, purpose);
the purposes are numbered here, in one place, so no two uses share a stream.
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
PAIRS_STREAM = 1  # which captions a training epoch uses, and their order
FRAMES_STREAM = 2  # frame order of a training epoch (the shuffled-frames ablation)
SAMPLING_STREAM = 3  # scheduled-sampling coin flips
EVAL_FRAMES_STREAM = 4  # frame order of a shuffled *evaluation* (no training epoch uses it)
DISCRIMINATOR_STREAM = 5  # LSTM-GAN discriminator pretraining: its pair order and G's samples
POLICY_SAMPLING_STREAM = 6  # captions sampled by policy-gradient fine-tuning (SCST, LSTM-GAN), per step


@dataclass
class ClipFeatures:
    """Features of one split, stacked once. Frames past a clip's length are zero and masked out."""

    video_ids: list[str]
    feats: torch.Tensor  # (N, T, F) float32, or (N, T, R, G) region grids
    mask: torch.Tensor  # (N, T) bool, True for real frames (a prefix of each row)

    def __len__(self) -> int:
        return len(self.video_ids)


def epoch_rng(seed: int, epoch: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, stream])


def stack_features(store: FeatureStore, records: Sequence[VideoRecord], regions: bool = False) -> ClipFeatures:
    """Load every clip's (T, F) features from a FeatureStore into one (N, T, F) tensor, or with
    `regions` its (T, R, G) region grids into (N, T, R, G) (FeatureError when extracted without --grid)."""
    load = store.load_grid if regions else store.load
    arrays = [load(record.video_id) for record in records]  # each (T, F) or (T, R, G); FeatureError when missing
    if not arrays:
        empty = (0, 1, 1, 1) if regions else (0, 1, 1)
        return ClipFeatures([], torch.zeros(empty), torch.zeros(0, 1, dtype=torch.bool))
    dims = {a.shape[1:] for a in arrays}
    if len(dims) != 1:
        raise FeatureError(f"Feature files in {store.dir} disagree on the feature size ({sorted(dims)}); re-extract them.")
    max_frames = max(a.shape[0] for a in arrays)
    feats = torch.zeros(len(arrays), max_frames, *dims.pop())  # (N, T, F) or (N, T, R, G)
    mask = torch.zeros(len(arrays), max_frames, dtype=torch.bool)  # (N, T)
    for row, array in enumerate(arrays):
        feats[row, : array.shape[0]] = torch.from_numpy(array)
        mask[row, : array.shape[0]] = True
    return ClipFeatures([r.video_id for r in records], feats, mask)


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
    """feats (B, T, F) or (B, T, R, F) reordered along T by index (B, T): a frame's regions move with it."""
    trailing = feats.shape[2:]  # (F,) or (R, F)
    expanded = index.view(*index.shape, *([1] * len(trailing))).expand(*index.shape, *trailing)  # like feats
    return feats.gather(1, expanded)  # (B, T, [R,] F)
