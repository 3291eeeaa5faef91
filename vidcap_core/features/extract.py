"""Encode the frames of many videos with a backbone and cache one `.npy` per video.

`extract_features` is the entry point for every backbone: it picks the `ClipEncoder` (decoded frames
through a CNN, here; SynthClips' ground truth for `oracle`, features/oracle.py) and hands it to the
one job loop (features/jobs.py: cache layout, resume, atomic writes). Frames are decoded by a small
thread pool while the CNN encodes the previous clips; frames of several videos are batched into one
forward pass. `encode_clips` is the same encoding for clips already in memory (the Captioner, OOD
calibration, perf).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidcap_core.data.records import VideoRecord
from vidcap_core.devices import pick_device
from vidcap_core.errors import FeatureError, VideoReadError
from vidcap_core.features.backbones import Backbone, build_backbone
from vidcap_core.features.jobs import ClipEncoder, ClipResult, ExtractionSummary, run_extraction, shard_of
from vidcap_core.features.oracle import ORACLE_BACKBONE, OracleEncoder
from vidcap_core.features.store import DISK_DTYPE, FEATURES_VERSION
from vidcap_core.video import read_frames

READ_THREADS = 2


# ----------------------------------------------------------------------------- settings


def as_size(frame_size: int | tuple[int, int] | None, backbone: Backbone) -> tuple[int, int]:
    if frame_size is None:
        return backbone.input_size
    size = (frame_size, frame_size) if isinstance(frame_size, int) else (int(frame_size[0]), int(frame_size[1]))
    if min(size) < 16:
        raise FeatureError(f"frame size {frame_size} is too small: use at least 16 pixels")
    return size


@torch.inference_mode()
def probe_output(backbone: Backbone, size: tuple[int, int]) -> tuple[int, int, tuple[int, int]]:
    """(feature_dim, grid_dim, (h, w)) of the backbone at this frame size."""
    H, W = size
    conv = backbone.conv_map(backbone.normalise(backbone.mean.new_zeros(1, 3, H, W)))  # (1, G, h, w)
    if backbone.tracks_objects:  # a one-frame clip through the clip-level step
        glob, grid = backbone.clip_features(conv.flatten(2).transpose(1, 2).cpu().numpy())  # (1, F), (1, K, S)
        return glob.shape[1], grid.shape[2], (1, grid.shape[1])
    glob = backbone.global_vector(conv)  # (1, F)
    return glob.shape[1], conv.shape[1], (conv.shape[2], conv.shape[3])


def extraction_meta(backbone: Backbone, num_frames: int, size: tuple[int, int], grid: bool) -> dict[str, Any]:
    feature_dim, grid_dim, grid_hw = probe_output(backbone, size)
    return {
        "backbone": backbone.name,
        "weights": backbone.weights_id,
        "feature_dim": feature_dim,
        "grid_dim": grid_dim,
        "num_frames": num_frames,
        "frame_size": list(size),
        "grid": grid,
        "grid_size": list(grid_hw),
        "dtype": np.dtype(DISK_DTYPE).name,
        "version": FEATURES_VERSION,
    }


# ----------------------------------------------------------------------------- reading


def read_clip(record: VideoRecord, num_frames: int, size: tuple[int, int]) -> np.ndarray | str:
    """(T, H, W, 3) uint8, or the error message when the video cannot be read."""
    try:
        frames = read_frames(record.path, num_frames, size)
    except VideoReadError as exc:
        return str(exc)
    expected = (num_frames, size[0], size[1], 3)
    if frames.shape != expected:
        return f"{record.path}: read_frames returned frames of shape {frames.shape}, expected {expected}"
    return frames


def prefetched_clips(
    pool: ThreadPoolExecutor, records: Sequence[VideoRecord], num_frames: int, size: tuple[int, int], ahead: int
) -> Iterator[tuple[VideoRecord, np.ndarray | str]]:
    """Yield (record, frames or error) in order, decoding up to `ahead` videos in the background."""
    queue: deque[tuple[VideoRecord, Future]] = deque()
    upcoming = iter(records)
    for record in upcoming:
        queue.append((record, pool.submit(read_clip, record, num_frames, size)))
        if len(queue) >= ahead:
            break
    while queue:
        record, future = queue.popleft()
        following = next(upcoming, None)
        if following is not None:
            queue.append((following, pool.submit(read_clip, following, num_frames, size)))
        yield record, future.result()


# ----------------------------------------------------------------------------- encoding


@torch.inference_mode()
def encode_frames(
    backbone: Backbone, frames: np.ndarray, batch_size: int, grid: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """frames (N, H, W, 3) uint8 -> global (N, F) and grid (N, R, G) or None, both float16."""
    device = backbone.mean.device
    globals_, grids = [], []
    for start in range(0, len(frames), batch_size):
        chunk = torch.from_numpy(frames[start : start + batch_size]).to(device)  # (b, H, W, 3)
        images = chunk.permute(0, 3, 1, 2).float().div_(255.0)  # (b, 3, H, W)
        glob, regions = backbone(images)  # (b, F), (b, R, G)
        globals_.append(glob.to(torch.float16).cpu().numpy())
        if grid:
            grids.append(regions.to(torch.float16).cpu().numpy())
    return np.concatenate(globals_), (np.concatenate(grids) if grid else None)


def encode_clips(
    backbone: Backbone, clips: Sequence[np.ndarray], batch_size: int, grid: bool
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Clips of frames [(T, H, W, 3) uint8] -> per clip (global (T, F), grid (T, R, G) or None), float16.
    Frames of all clips share forward passes; a backbone that tracks objects (synth-slots) then
    turns each clip's region grids into its object slots."""
    frames = np.concatenate(list(clips))  # (sum T, H, W, 3)
    glob, regions = encode_frames(backbone, frames, batch_size, grid or backbone.tracks_objects)  # (sum T, F), (sum T, R, G)
    encoded: list[tuple[np.ndarray, np.ndarray | None]] = []
    start = 0
    for clip in clips:
        end = start + len(clip)
        clip_glob, clip_grid = glob[start:end], None if regions is None else regions[start:end]
        if backbone.tracks_objects:
            clip_glob, clip_grid = (a.astype(np.float16) for a in backbone.clip_features(clip_grid))  # (T, K * S), (T, K, S)
        encoded.append((clip_glob, clip_grid if grid else None))
        start = end
    return encoded


class FrameEncoder:
    """A `ClipEncoder` over decoded frames: videos read `READ_THREADS` at a time ahead of the CNN,
    clips grouped until they fill `batch_size` frames, each group encoded by shared forward passes."""

    def __init__(self, backbone: Backbone, size: tuple[int, int], batch_size: int) -> None:
        self.backbone, self.size, self.batch_size = backbone, size, batch_size
        self.label = backbone.name

    def meta(self, num_frames: int, grid: bool) -> dict[str, Any]:
        return extraction_meta(self.backbone, num_frames, self.size, grid)

    def encode(self, records: Sequence[VideoRecord], num_frames: int, grid: bool) -> Iterator[list[tuple[VideoRecord, ClipResult]]]:
        pending: list[tuple[VideoRecord, np.ndarray]] = []
        ahead = max(4, 2 * self.batch_size // num_frames + 2)
        pool = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="vidcap-read")
        try:
            for record, clip in prefetched_clips(pool, records, num_frames, self.size, ahead):
                if isinstance(clip, str):
                    yield [(record, clip)]
                    continue
                pending.append((record, clip))
                if len(pending) * num_frames >= self.batch_size:
                    yield self.encode_group(pending, grid)
                    pending = []
            if pending:
                yield self.encode_group(pending, grid)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def encode_group(self, clips: list[tuple[VideoRecord, np.ndarray]], grid: bool) -> list[tuple[VideoRecord, ClipResult]]:
        encoded = encode_clips(self.backbone, [frames for _, frames in clips], self.batch_size, grid)
        return [(record, result) for (record, _), result in zip(clips, encoded)]


# ----------------------------------------------------------------------------- the entry point


def clip_encoder(backbone: str, records: Sequence[VideoRecord], frame_size: int | tuple[int, int] | None,
                 weights: Path | None, batch_size: int, device: str | None) -> ClipEncoder:
    """The encoder of `backbone` for these records: the oracle reads their SynthClips plans, every
    other backbone their decoded frames."""
    if backbone == ORACLE_BACKBONE:  # SynthClips ground truth, not pixels: same cache, another source
        build_backbone(backbone, weights)  # refuses --weights
        return OracleEncoder(records)
    model = build_backbone(backbone, weights).to(pick_device(device)).eval()
    return FrameEncoder(model, as_size(frame_size, model), batch_size)


def extract_features(
    records: Sequence[VideoRecord],
    backbone: str,
    out_dir: Path,
    num_frames: int = 32,
    frame_size: int | tuple[int, int] | None = None,
    grid: bool = False,
    weights: Path | None = None,
    batch_size: int = 64,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    device: str | None = None,
) -> ExtractionSummary:
    """Extract and cache features of `records` (this shard only) into `out_dir`; skip what is cached.

    `batch_size` counts frames per forward pass, batched across videos. `frame_size` defaults to the
    backbone's input size (the oracle ignores it). Videos that cannot be read are reported in
    `failed`; the rest go on.
    """
    if num_frames < 1 or batch_size < 1:
        raise FeatureError(f"num_frames ({num_frames}) and batch_size ({batch_size}) must be at least 1")
    mine = shard_of(records, shard)
    encoder = clip_encoder(backbone, mine, frame_size, weights, batch_size, device)
    return run_extraction(encoder, mine, Path(out_dir), num_frames, grid, progress)
