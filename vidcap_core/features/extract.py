"""Encode the frames of many videos with a backbone and cache one `.npy` per video.

Layout of `out_dir`:
  features.json           settings of the run (backbone, weights, frames, sizes, dtype, version)
  <video_id>.npy          (T, F) float16
  <video_id>.grid.npy     (T, R, G) float16, only with grid=True

Every file is written atomically (vidcap_core.files: a temp file, then rename), so a finished name is
always complete: an interrupted run is resumed by running it again, which first deletes the temp
files a killed write of a clip it redoes left behind.
Frames are decoded by a small thread pool while the CNN encodes the previous clips; frames of
several videos are batched into one forward pass.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from vidcap_core.data.records import VideoRecord
from vidcap_core.devices import pick_device
from vidcap_core.errors import FeatureError, VideoReadError
from vidcap_core.features.backbones import Backbone, build_backbone
from vidcap_core.features.store import (
    DISK_DTYPE,
    FEATURES_VERSION,
    META_FILE,
    feature_path,
    grid_path,
)
from vidcap_core.files import atomic_write, sweep_interrupted_writes_of, write_json
from vidcap_core.video import read_frames

READ_THREADS = 2


@dataclass
class ExtractionSummary:
    """What one call did. `seconds` covers reading + encoding + saving, not building the backbone."""

    done: int
    skipped: int
    failed: dict[str, str] = field(default_factory=dict)  # video_id -> error message
    seconds: float = 0.0
    clips_per_s: float = 0.0
    frames_per_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def claim_out_dir(out_dir: Path, meta: dict[str, Any]) -> None:
    """Write features.json, or check that the one already there has the same settings."""
    path = out_dir / META_FILE
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise FeatureError(f"{path} is unreadable ({exc}): delete {out_dir} or choose another --out") from exc
        diff = {k: (old.get(k), v) for k, v in meta.items() if old.get(k) != v}
        if diff:
            shown = "; ".join(f"{k}: cached {a!r}, requested {b!r}" for k, (a, b) in diff.items())
            raise FeatureError(
                f"{out_dir} holds features extracted with other settings ({shown}): "
                f"choose another --out, or delete {out_dir} to re-extract"
            )
        return
    write_json(path, meta)


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n."""
    from vidcap_core.errors import ConfigError

    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ConfigError(f"shard {text!r} must look like i/n, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"shard {text!r} needs 0 <= i < n")
    return i, n


def shard_records(records: Sequence[VideoRecord], shard: tuple[int, int]) -> list[VideoRecord]:
    """Records whose index (sorted by video_id, duplicates dropped) % n == i."""
    i, n = shard
    if n < 1 or not 0 <= i < n:
        raise FeatureError(f"shard {i}/{n} is invalid: need 0 <= i < n")
    unique = {r.video_id: r for r in sorted(records, key=lambda r: r.video_id)}
    return [r for k, r in enumerate(unique.values()) if k % n == i]


def is_done(out_dir: Path, video_id: str, grid: bool) -> bool:
    return feature_path(out_dir, video_id).is_file() and (not grid or grid_path(out_dir, video_id).is_file())


def check_video_id(video_id: str) -> None:
    if not video_id or "/" in video_id or "\\" in video_id or video_id.startswith("."):
        raise FeatureError(f"video id {video_id!r} cannot be a file name: ids must not contain slashes or start with '.'")


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


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda handle: np.save(handle, array))


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


def encode_and_save(
    backbone: Backbone, clips: list[tuple[VideoRecord, np.ndarray]], out_dir: Path, batch_size: int, grid: bool
) -> None:
    encoded = encode_clips(backbone, [frames for _, frames in clips], batch_size, grid)
    for (record, _), (glob, regions) in zip(clips, encoded):
        if regions is not None:  # grid first: a finished global file implies a finished grid
            save_npy_atomic(grid_path(out_dir, record.video_id), regions)  # (T, R, G)
        save_npy_atomic(feature_path(out_dir, record.video_id), glob)  # (T, F)


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
    backbone's input size. Videos that cannot be read are reported in `failed`; the rest go on.
    """
    if num_frames < 1 or batch_size < 1:
        raise FeatureError(f"num_frames ({num_frames}) and batch_size ({batch_size}) must be at least 1")
    if backbone == "oracle":  # SynthClips ground truth, not pixels: same cache, another source
        from vidcap_core.features.oracle import extract_oracle_features

        build_backbone(backbone, weights)  # refuses --weights
        return extract_oracle_features(records, Path(out_dir), num_frames, grid=grid, shard=shard, progress=progress)
    mine = shard_records(records, shard)
    for record in mine:
        check_video_id(record.video_id)
    out_dir = Path(out_dir)
    model = build_backbone(backbone, weights).to(pick_device(device)).eval()
    size = as_size(frame_size, model)
    claim_out_dir(out_dir, extraction_meta(model, num_frames, size, grid))

    todo = [r for r in mine if not is_done(out_dir, r.video_id, grid)]
    for record in todo:  # only this shard's clips: other shards may be writing into out_dir now
        sweep_interrupted_writes_of(feature_path(out_dir, record.video_id))
        sweep_interrupted_writes_of(grid_path(out_dir, record.video_id))
    summary = ExtractionSummary(done=0, skipped=len(mine) - len(todo))
    started = time.perf_counter()
    pending: list[tuple[VideoRecord, np.ndarray]] = []
    ahead = max(4, 2 * batch_size // num_frames + 2)
    pool = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="vidcap-read")
    bar = tqdm(total=len(todo), unit="clip", desc=f"{backbone} features", disable=not progress)
    try:
        for record, clip in prefetched_clips(pool, todo, num_frames, size, ahead):
            if isinstance(clip, str):
                summary.failed[record.video_id] = clip
                bar.update(1)
                continue
            pending.append((record, clip))
            if len(pending) * num_frames >= batch_size:
                encode_and_save(model, pending, out_dir, batch_size, grid)
                summary.done += len(pending)
                bar.update(len(pending))
                pending = []
        if pending:
            encode_and_save(model, pending, out_dir, batch_size, grid)
            summary.done += len(pending)
            bar.update(len(pending))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    summary.seconds = time.perf_counter() - started
    if summary.seconds > 0:
        summary.clips_per_s = summary.done / summary.seconds
        summary.frames_per_s = summary.done * num_frames / summary.seconds
    return summary
