"""The one extraction job loop: features of many videos into a resumable on-disk cache, whatever
computes them (a CNN over decoded frames, features/extract.py; SynthClips' ground truth,
features/oracle.py).

Layout of `out_dir`:
  features.json           settings of the run (backbone, weights, frames, sizes, dtype, version)
  <video_id>.npy          (T, F) float16
  <video_id>.grid.npy     (T, R, G) float16, only with grid=True

Every file is written atomically (vidcap_core.files: a temp file, then rename), so a finished name is
always complete: an interrupted run is resumed by running it again, which first deletes the temp
files a killed write of a clip it redoes left behind.

A `ClipEncoder` says what it writes into features.json (`meta`) and yields the features of the
clips it is given, in groups (a group shares forward passes); `run_extraction` does the rest:
claiming the folder, skipping finished clips, sweeping killed writes, saving, progress and timing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from vidcap_core.data.records import VideoRecord
from vidcap_core.errors import ConfigError, FeatureError
from vidcap_core.features.store import META_FILE, feature_path, grid_path
from vidcap_core.files import atomic_write, sweep_interrupted_writes_of, write_json

# One clip's features as saved: (global (T, F), grid (T, R, G) or None) in the cache's dtype, or the
# message saying why the clip has none (a video that cannot be read).
EncodedClip = tuple[np.ndarray, np.ndarray | None]
ClipResult = EncodedClip | str


class ClipEncoder(Protocol):
    """What computes features for the job loop."""

    label: str  # shown on the progress bar: "<label> features"

    def meta(self, num_frames: int, grid: bool) -> dict[str, Any]:
        """features.json of the cache it writes (claim_out_dir compares it with an existing one)."""
        ...

    def encode(self, records: Sequence[VideoRecord], num_frames: int, grid: bool) -> Iterator[list[tuple[VideoRecord, ClipResult]]]:
        """Every record's features (or error message), in order, in groups of clips computed together."""
        ...


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


# ----------------------------------------------------------------------------- which clips


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n."""
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


def check_video_id(video_id: str) -> None:
    if not video_id or "/" in video_id or "\\" in video_id or video_id.startswith("."):
        raise FeatureError(f"video id {video_id!r} cannot be a file name: ids must not contain slashes or start with '.'")


def shard_of(records: Sequence[VideoRecord], shard: tuple[int, int]) -> list[VideoRecord]:
    """This shard's records, each id checked to be a usable file name."""
    mine = shard_records(records, shard)
    for record in mine:
        check_video_id(record.video_id)
    return mine


# ----------------------------------------------------------------------------- the cache folder


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


def is_done(out_dir: Path, video_id: str, grid: bool) -> bool:
    return feature_path(out_dir, video_id).is_file() and (not grid or grid_path(out_dir, video_id).is_file())


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda handle: np.save(handle, array))


def save_clip(out_dir: Path, video_id: str, encoded: EncodedClip) -> None:
    glob, regions = encoded
    if regions is not None:  # grid first: a finished global file implies a finished grid
        save_npy_atomic(grid_path(out_dir, video_id), regions)  # (T, R, G)
    save_npy_atomic(feature_path(out_dir, video_id), glob)  # (T, F)


# ----------------------------------------------------------------------------- the loop


def run_extraction(encoder: ClipEncoder, records: Sequence[VideoRecord], out_dir: Path, num_frames: int,
                   grid: bool, progress: bool = True) -> ExtractionSummary:
    """Cache the features of `records` (one shard's, ids checked: `shard_of`) that `out_dir` lacks."""
    out_dir = Path(out_dir)
    claim_out_dir(out_dir, encoder.meta(num_frames, grid))
    todo = [r for r in records if not is_done(out_dir, r.video_id, grid)]
    for record in todo:  # only this shard's clips: other shards may be writing into out_dir now
        sweep_interrupted_writes_of(feature_path(out_dir, record.video_id))
        sweep_interrupted_writes_of(grid_path(out_dir, record.video_id))
    summary = ExtractionSummary(done=0, skipped=len(records) - len(todo))
    started = time.perf_counter()
    bar = tqdm(total=len(todo), unit="clip", desc=f"{encoder.label} features", disable=not progress)
    try:
        with closing(encoder.encode(todo, num_frames, grid)) as groups:
            for group in groups:
                for record, result in group:
                    if isinstance(result, str):
                        summary.failed[record.video_id] = result
                    else:
                        save_clip(out_dir, record.video_id, result)
                        summary.done += 1
                bar.update(len(group))
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - started
    if summary.seconds > 0:
        summary.clips_per_s = summary.done / summary.seconds
        summary.frames_per_s = summary.done * num_frames / summary.seconds
    return summary
