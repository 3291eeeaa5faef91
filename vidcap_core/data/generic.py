"""Your own videos: a CSV, JSONL (or JSON list) with one row per caption, `video,caption[,split][,id]`.

- `video` is a path relative to the root, or absolute;
- `video_id` is the `id` column when there is one, else the video file's stem (two different
  files with the same stem need an `id` column);
- `split` is `train` / `val` / `test` (`validate`, `valid`, `validation`, `dev`, `training`,
  `testing` are accepted). A video with no split on any of its rows is assigned one from a hash
  of its id: the first 8 hex digits of SHA-1(video_id) mod 100 -> [0, 70) train, [70, 80) val,
  [80, 100) test, so roughly 70/10/20 and the same on every machine and run.

Without `annotations`, the root is searched for captions.csv, captions.jsonl, annotations.csv,
annotations.jsonl (in that order). Missing video files are counted, not fatal.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidcap_core.data.discovery import missing_video_note, natural_sort_key, read_text_file, require_root
from vidcap_core.data.records import CaptionDataset, VideoRecord
from vidcap_core.errors import DatasetError

GENERIC_DEFAULT_NAMES = ("captions.csv", "captions.jsonl", "annotations.csv", "annotations.jsonl")
GENERIC_REQUIRED_COLUMNS = ("video", "caption")
SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validate": "val", "validation": "val", "dev": "val",
    "test": "test", "testing": "test",
}
HASH_SPLIT_PERCENT = (("train", 70), ("val", 80), ("test", 100))  # upper bounds of each bucket


@dataclass
class _Video:
    path: Path
    split: str | None = None
    captions: list[str] = field(default_factory=list)


def load_generic(root: Path, annotations: Path | None = None, name: str = "csv") -> CaptionDataset:
    """Read a `video,caption[,split][,id]` CSV or JSONL into records."""
    root = require_root(root, name, "your videos and a captions.csv / captions.jsonl (video,caption[,split])")
    path = _annotation_file(root, annotations)
    rows = _read_rows(path)
    videos, empty = _group_rows(root, path, rows)
    hashed = 0
    records = []
    for video_id in sorted(videos, key=natural_sort_key):
        video = videos[video_id]
        if not video.captions:
            continue
        split = video.split
        if split is None:
            split, hashed = hash_split(video_id), hashed + 1
        records.append(VideoRecord(video_id, video.path, split, tuple(video.captions)))
    notes = [f"read {len(rows)} rows of {path}"]
    if empty:
        notes.append(f"dropped {empty} row(s) with an empty caption")
    if hashed:
        notes.append(f"{hashed} video(s) had no split: assigned by SHA-1 of the video id (70/10/20 train/val/test)")
    notes += missing_video_note(records, root)
    return CaptionDataset(name=name, root=root, records=records, notes=notes)


def hash_split(video_id: str) -> str:
    """train / val / test for a video with no split: ~70/10/20, fixed by the id alone."""
    bucket = int(hashlib.sha1(video_id.encode("utf-8")).hexdigest()[:8], 16) % 100
    return next(split for split, upper in HASH_SPLIT_PERCENT if bucket < upper)


def _annotation_file(root: Path, annotations: Path | None) -> Path:
    if annotations is not None:
        path = Path(annotations)
        if not path.is_absolute() and not path.exists() and (root / path).is_file():
            path = root / path
        if path.is_dir():
            raise DatasetError(f"Caption file {path} is a folder; pass the CSV or JSONL file (video,caption[,split]) itself.")
        if not path.is_file():
            raise DatasetError(
                f"Caption file {path} does not exist; expected a CSV or JSONL with columns "
                "video,caption[,split]. Check the --annotations path."
            )
        return path
    for filename in GENERIC_DEFAULT_NAMES:
        if (root / filename).is_file():
            return root / filename
    raise DatasetError(
        f"No caption file in {root}: expected one of {', '.join(GENERIC_DEFAULT_NAMES)} with columns "
        "video,caption[,split]. Pass --annotations FILE."
    )


def _read_rows(path: Path) -> list[dict[str, Any]]:
    text = read_text_file(path, "Caption file")
    if path.suffix.lower() == ".json":
        rows = _read_json_array(path, text)
        columns = set().union(*rows) if rows else set()
    elif path.suffix.lower() in (".jsonl", ".ndjson"):
        rows = _read_jsonl(path, text)
        columns = set().union(*rows) if rows else set()
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise DatasetError(f"Caption file {path} is not valid CSV near line {reader.line_num}: {exc}.") from exc
        columns = set(reader.fieldnames or [])
    missing = [c for c in GENERIC_REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise DatasetError(
            f"Caption file {path} has columns {', '.join(sorted(columns)) or '(none)'}; expected "
            f"video,caption[,split][,id] (missing {', '.join(missing)})."
        )
    return rows


def _read_json_array(path: Path, text: str) -> list[dict[str, Any]]:
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"Caption file {path} is not valid JSON (line {exc.lineno}: {exc.msg}).") from exc
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DatasetError(f"Caption file {path} must hold a list of objects like "
                           '{"video": "a.mp4", "caption": "..."} (or use .jsonl, one object per line).')
    return rows


def _read_jsonl(path: Path, text: str) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"Line {number} of {path} is not valid JSON ({exc.msg}); expected one object per line.") from exc
        if not isinstance(row, dict):
            raise DatasetError(f"Line {number} of {path} is a {type(row).__name__}; expected an object like "
                               '{"video": "a.mp4", "caption": "..."}.')
        rows.append(row)
    return rows


def _group_rows(root: Path, path: Path, rows: list[dict[str, Any]]) -> tuple[dict[str, _Video], int]:
    """video_id -> its file, split and captions; and how many rows had an empty caption."""
    videos: dict[str, _Video] = {}
    empty = 0
    for number, row in enumerate(rows, start=1):
        video = _cell(row, "video")
        if not video:
            raise DatasetError(f"Row {number} of {path} has an empty 'video'; give each row a video path.")
        video_path = Path(video) if Path(video).is_absolute() else root / video
        video_id = _cell(row, "id") or video_path.stem
        split = _normalise_split(_cell(row, "split"), path, number)
        entry = videos.setdefault(video_id, _Video(video_path))
        if entry.path != video_path:
            raise DatasetError(
                f"Row {number} of {path}: video id {video_id!r} names both {entry.path} and {video_path}; "
                "add an 'id' column that tells them apart."
            )
        if split is not None:
            if entry.split is not None and entry.split != split:
                raise DatasetError(f"Row {number} of {path}: video {video_id!r} is in both {entry.split!r} and {split!r}; "
                                   "give all rows of a video the same split.")
            entry.split = split
        caption = _cell(row, "caption")
        if caption:
            entry.captions.append(caption)
        else:
            empty += 1
    return videos, empty


def _cell(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    return "" if value is None else str(value).strip()


def _normalise_split(value: str, path: Path, number: int) -> str | None:
    if not value:
        return None
    split = SPLIT_ALIASES.get(value.casefold())
    if split is None:
        raise DatasetError(f"Row {number} of {path} has split {value!r}; expected train, val or test (or leave it empty).")
    return split
