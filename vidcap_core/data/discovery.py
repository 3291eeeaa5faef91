"""Finding a dataset's files: one walk of the root indexes its videos and annotation files."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidcap_core.errors import DatasetError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")


@dataclass
class RootScan:
    """What one walk of a dataset root found.

    `videos` maps a file stem (`video12`, `-4wsuPCjDBc_5_15`) to its file; `annotations` maps
    each wanted annotation file name to every path it was found at, shallowest first.
    """

    root: Path
    videos: dict[str, Path] = field(default_factory=dict)
    annotations: dict[str, list[Path]] = field(default_factory=dict)
    duplicate_stems: list[str] = field(default_factory=list)


def natural_sort_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """`video2` before `video10`: digit runs compare as numbers, other runs as text."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part)


def require_root(root: Path, dataset: str, expected: str) -> Path:
    """The root as a Path, or a DatasetError naming it and what should be in it."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(
            f"{dataset} root {root} does not exist; expected a folder holding {expected}. "
            "Pass --root with the folder the dataset was unpacked into."
        )
    if not root.is_dir():
        raise DatasetError(f"{dataset} root {root} is a file, not a folder; pass the folder holding {expected}.")
    return root


def scan_root(root: Path, annotation_names: Iterable[str] = (), video_extensions: Iterable[str] = VIDEO_EXTENSIONS) -> RootScan:
    """Walk `root` once (following symlinked folders, each real folder once) and index its files.

    When two files share a stem (`video1.mp4` and `other/video1.mp4`, or `.mp4` and `.avi`), the
    one whose extension comes first in `video_extensions`, then the shallower, then the first in
    sorted order wins, and the stem is listed in `duplicate_stems`.
    """
    extension_rank = {ext.lower(): i for i, ext in enumerate(video_extensions)}
    wanted = set(annotation_names)
    scan = RootScan(root=root)
    candidates: dict[str, list[Path]] = {}
    seen_dirs: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:  # a symlink loop or a second link to the same folder
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames.sort()
        for filename in filenames:
            path = Path(dirpath) / filename
            if filename in wanted:
                scan.annotations.setdefault(filename, []).append(path)
            stem, ext = os.path.splitext(filename)
            if ext.lower() in extension_rank:
                candidates.setdefault(stem, []).append(path)
    for stem, paths in candidates.items():
        paths.sort(key=lambda p: (extension_rank[p.suffix.lower()], len(p.parts), str(p)))
        scan.videos[stem] = paths[0]
        if len(paths) > 1:
            scan.duplicate_stems.append(stem)
    for paths in scan.annotations.values():
        paths.sort(key=lambda p: (len(p.parts), str(p)))
    scan.duplicate_stems.sort(key=natural_sort_key)
    return scan


def duplicate_note(scan: RootScan) -> list[str]:
    if not scan.duplicate_stems:
        return []
    shown = ", ".join(scan.duplicate_stems[:3])
    return [f"{len(scan.duplicate_stems)} video id(s) have more than one file under {scan.root} (e.g. {shown}); "
            "used the .mp4 / shallowest / first-sorted one."]


def missing_video_note(records: list, root: Path) -> list[str]:
    """A note counting records whose video file is absent, with one example path."""
    missing = [r for r in records if not r.exists]
    if not missing:
        return []
    return [f"{len(missing)} of {len(records)} videos with captions have no file under {root} "
            f"(e.g. {missing[0].video_id} expected at {missing[0].path}); they are kept as records and counted as missing."]


def read_json_file(path: Path, what: str) -> Any:
    """Parsed JSON, or a DatasetError naming the file, the position of the fault and what it should hold."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise DatasetError(f"{what} {path} does not exist; pass an existing file.") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{what} {path} is not UTF-8 text ({exc}); re-save it as UTF-8.") from exc
    except OSError as exc:
        raise DatasetError(f"{what} {path} cannot be read: {exc}.") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{what} {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "re-download or regenerate the file."
        ) from exc


def read_text_file(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise DatasetError(f"{what} {path} does not exist; pass an existing file.") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{what} {path} is not UTF-8 text ({exc}); re-save it as UTF-8.") from exc
    except OSError as exc:
        raise DatasetError(f"{what} {path} cannot be read: {exc}.") from exc
