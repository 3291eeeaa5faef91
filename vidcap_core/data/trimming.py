"""Deterministic per-split subsets, for quick runs on a slice of a dataset.

`max_videos` is either a count (an int >= 1, or an integral float > 1 such as 50.0 from a
config file) or a fraction (a float in (0, 1]; 1.0 keeps everything, an int 1 keeps one video).
A fraction keeps ceil(fraction * n) videos of a split of n.

For each split the video ids are put in natural order (`video2` before `video10`) and permuted
with `np.random.default_rng([seed, split_index])`; the first k of that permutation are kept, so the
subset depends only on (ids of that split, seed), is identical on every run, and a smaller k gives
a subset of a larger one. Kept records stay in the dataset's own order.
"""

from __future__ import annotations

import math

import numpy as np

from vidcap_core.data.discovery import natural_sort_key
from vidcap_core.data.records import SPLITS, CaptionDataset
from vidcap_core.errors import ConfigError


def parse_max_videos(text: str | None) -> int | float | None:
    """`"50"` -> 50 (a count), `"0.1"` -> 0.1 (a fraction), `""`/None/`"all"` -> None; else ConfigError."""
    if text is None or text.strip().lower() in ("", "all", "none"):
        return None
    value = text.strip()
    try:
        return check_max_videos(int(value))
    except ValueError:
        pass
    try:
        return check_max_videos(float(value))
    except ValueError as exc:
        raise ConfigError(f"--max-videos {text!r} is neither a count (e.g. 50) nor a fraction in (0, 1] (e.g. 0.1).") from exc


def check_max_videos(max_videos: int | float | None) -> int | float | None:
    """The value as a count (int) or a fraction (float in (0, 1]), or a ConfigError saying why not."""
    if max_videos is None:
        return None
    if isinstance(max_videos, bool) or not isinstance(max_videos, (int, float)):
        raise ConfigError(f"max_videos={max_videos!r} must be a count (int >= 1) or a fraction in (0, 1].")
    if isinstance(max_videos, int):
        if max_videos < 1:
            raise ConfigError(f"max_videos={max_videos} must be >= 1 (or a fraction in (0, 1], or None for all).")
        return max_videos
    if math.isfinite(max_videos) and 0.0 < max_videos <= 1.0:
        return float(max_videos)
    if math.isfinite(max_videos) and max_videos > 1.0 and max_videos.is_integer():
        return int(max_videos)
    raise ConfigError(f"max_videos={max_videos!r} must be a count (int >= 1) or a fraction in (0, 1].")


def videos_to_keep(n: int, max_videos: int | float) -> int:
    if isinstance(max_videos, float):
        return min(n, math.ceil(max_videos * n))
    return min(n, max_videos)


def trim_dataset(ds: CaptionDataset, max_videos: int | float | None, seed: int) -> CaptionDataset:
    """At most `max_videos` videos (or that fraction) of each split, the same subset for the same seed."""
    max_videos = check_max_videos(max_videos)
    if max_videos is None:
        return ds
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed={seed!r} must be a non-negative integer.")
    keep: set[str] = set()
    counts = []
    for split_index, split in enumerate(SPLITS):
        ids = sorted({r.video_id for r in ds.split(split)}, key=natural_sort_key)
        if not ids:
            continue
        k = videos_to_keep(len(ids), max_videos)
        order = np.random.default_rng([int(seed), split_index]).permutation(len(ids))
        keep.update(ids[i] for i in order[:k])
        counts.append(f"{split} {k}/{len(ids)}")
    records = [r for r in ds.records if r.video_id in keep]
    note = f"trimmed to max_videos={max_videos} per split with seed {seed}: {', '.join(counts) or 'no videos'}"
    return CaptionDataset(name=ds.name, root=ds.root, records=records, notes=[*ds.notes, note])
