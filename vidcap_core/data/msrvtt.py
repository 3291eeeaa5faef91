"""MSR-VTT loader (also reads SynthClips, which writes the same annotation format).

An annotation file is `{"info", "videos": [{"id", "video_id", "category", "url", "start time",
"end time", "split"}], "sentences": [{"sen_id", "video_id", "caption"}]}`. The official release
splits it into `train_val_videodatainfo.json` and `test_videodatainfo.json` (the latter may carry
no sentences); the 2017 challenge ships `videodatainfo_2017.json`; SynthClips writes
`videodatainfo.json`. Every one of these found under the root is read, in that order:

- a clip's split is taken from the first file that lists it (`train`, `validate` -> `val`, `test`);
  a later file that disagrees is noted, not obeyed;
- a sentence seen again with the same `(video_id, sen_id, caption)` (the 2017 file repeats the
  2016 ones) is read once; duplicated captions with different `sen_id` are kept, as in the release;
- clips with no caption are not records; sentences naming an unlisted clip are dropped and noted.

Videos are `video<N>.mp4` anywhere under the root (`TrainValVideo/`, `TestVideo/`, `videos/`),
indexed with one walk. A clip whose file is absent is still a record (`CaptionDataset.missing()`),
with the path where the release would keep it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidcap_core.data.discovery import (
    RootScan,
    duplicate_note,
    missing_video_note,
    natural_sort_key,
    read_json_file,
    require_root,
    scan_root,
)
from vidcap_core.data.records import CaptionDataset, VideoRecord
from vidcap_core.errors import DatasetError

MSRVTT_ANNOTATION_NAMES = (
    "train_val_videodatainfo.json",
    "test_videodatainfo.json",
    "videodatainfo_2017.json",
    "videodatainfo.json",
)
SYNTH_ANNOTATION_NAME = "videodatainfo.json"
MSRVTT_SPLITS = {"train": "train", "validate": "val", "val": "val", "test": "test"}
EXPECTED = "MSR-VTT annotations (" + ", ".join(MSRVTT_ANNOTATION_NAMES) + ") and video<N>.mp4 files"


@dataclass
class _Annotations:
    """Everything read from the annotation files, before records are made."""

    splits: dict[str, str] = field(default_factory=dict)  # video_id -> normalised split
    split_source: dict[str, Path] = field(default_factory=dict)
    captions: dict[str, list[str]] = field(default_factory=dict)
    seen_sentences: set[tuple[str, Any, str]] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def load_msrvtt(root: Path, annotations: Path | Sequence[Path] | None = None, name: str = "msrvtt") -> CaptionDataset:
    """Read MSR-VTT-format annotations under `root` (or the given file(s), or the folder holding them)."""
    root = require_root(root, name, EXPECTED)
    scan = scan_root(root, MSRVTT_ANNOTATION_NAMES)
    files = _annotation_files(root, annotations, scan, name)
    found = _Annotations()
    for path in files:
        _read_annotation_file(path, found)
    records = _make_records(root, scan, found, name)
    notes = [f"read {', '.join(str(p) for p in files)}"] + found.notes + duplicate_note(scan)
    notes += missing_video_note(records, root)
    return CaptionDataset(name=name, root=root, records=records, notes=notes)


def load_synth(root: Path, annotations: Path | None = None) -> CaptionDataset:
    """SynthClips: the MSR-VTT loader on `root/videodatainfo.json` (or `annotations`)."""
    root = require_root(root, "synth", f"SynthClips' {SYNTH_ANNOTATION_NAME} and videos/video<N>.mp4")
    path = Path(annotations) if annotations is not None else root / SYNTH_ANNOTATION_NAME
    if not path.is_file():
        raise DatasetError(
            f"SynthClips annotation file {path} does not exist (or is not a file); expected {SYNTH_ANNOTATION_NAME} as written by "
            f"`vidcap data synth --out {root}`. Generate SynthClips there or pass --annotations."
        )
    return load_msrvtt(root, path, name="synth")


def _annotation_files(root: Path, annotations: Path | Sequence[Path] | None, scan: RootScan, name: str) -> list[Path]:
    if annotations is None:
        files = [scan.annotations[n][0] for n in MSRVTT_ANNOTATION_NAMES if n in scan.annotations]
        if not files:
            raise DatasetError(
                f"No {name} annotation file under {root}: expected one of {', '.join(MSRVTT_ANNOTATION_NAMES)}. "
                "Pass --annotations FILE if it lives elsewhere."
            )
        return files
    given = [Path(annotations)] if isinstance(annotations, (str, Path)) else [Path(p) for p in annotations]
    files: list[Path] = []
    for path in given:
        if path.is_dir():  # a folder holding the release's files: read those directly inside it
            inside = [path / n for n in MSRVTT_ANNOTATION_NAMES if (path / n).is_file()]
            if not inside:
                raise DatasetError(
                    f"Annotation folder {path} holds none of {', '.join(MSRVTT_ANNOTATION_NAMES)}; "
                    "pass the annotation file itself with --annotations."
                )
            files.extend(inside)
        elif path.is_file():
            files.append(path)
        else:
            raise DatasetError(
                f"{name} annotation file {path} does not exist; expected an MSR-VTT-format JSON "
                f"such as {MSRVTT_ANNOTATION_NAMES[0]}. Check the --annotations path."
            )
    return files


def _read_annotation_file(path: Path, found: _Annotations) -> None:
    data = read_json_file(path, "MSR-VTT annotation file")
    if not isinstance(data, dict) or not isinstance(data.get("videos"), list):
        raise DatasetError(
            f"MSR-VTT annotation file {path} has no 'videos' list; expected "
            '{"info", "videos": [...], "sentences": [...]} as in train_val_videodatainfo.json.'
        )
    listed = [_read_video_entry(path, i, entry) for i, entry in enumerate(data["videos"])]
    for video_id, split in listed:
        if video_id not in found.splits:
            found.splits[video_id] = split
            found.split_source[video_id] = path
        elif found.splits[video_id] != split:
            found.notes.append(
                f"{video_id} is {split!r} in {path} but {found.splits[video_id]!r} in "
                f"{found.split_source[video_id]}; kept {found.splits[video_id]!r}"
            )
    sentences = data.get("sentences")
    if not sentences:
        found.notes.append(f"{path.name} has no sentences (captions) for its {len(listed)} videos")
        return
    if not isinstance(sentences, list):
        raise DatasetError(f"'sentences' in {path} is a {type(sentences).__name__}, expected a list of "
                           '{"sen_id", "video_id", "caption"} objects.')
    empty = 0
    for i, entry in enumerate(sentences):
        video_id, sen_id, caption = _read_sentence_entry(path, i, entry)
        if not caption:
            empty += 1
            continue
        key = (video_id, sen_id if sen_id is not None else (str(path), i), caption)
        if key in found.seen_sentences:
            continue
        found.seen_sentences.add(key)
        found.captions.setdefault(video_id, []).append(caption)
    if empty:
        found.notes.append(f"dropped {empty} empty caption(s) in {path.name}")


def _read_video_entry(path: Path, index: int, entry: Any) -> tuple[str, str]:
    if not isinstance(entry, dict):
        raise DatasetError(f"videos[{index}] in {path} is not an object; expected {{'video_id', 'split', ...}}.")
    video_id = entry.get("video_id")
    if video_id is None and isinstance(entry.get("id"), int):
        video_id = f"video{entry['id']}"
    if not isinstance(video_id, str) or not video_id:
        raise DatasetError(f"videos[{index}] in {path} has no 'video_id' string; fix or regenerate the file.")
    split = entry.get("split")
    if split not in MSRVTT_SPLITS:
        raise DatasetError(
            f"videos[{index}] ({video_id}) in {path} has split {split!r}; expected one of "
            f"{', '.join(MSRVTT_SPLITS)}."
        )
    return video_id, MSRVTT_SPLITS[split]


def _read_sentence_entry(path: Path, index: int, entry: Any) -> tuple[str, Any, str]:
    if not isinstance(entry, dict):
        raise DatasetError(f"sentences[{index}] in {path} is not an object; expected {{'sen_id', 'video_id', 'caption'}}.")
    video_id, caption = entry.get("video_id"), entry.get("caption")
    if not isinstance(video_id, str) or not (isinstance(caption, str) or caption is None):
        raise DatasetError(
            f"sentences[{index}] in {path} needs a 'video_id' string and a 'caption' string; "
            f"found video_id={video_id!r}, caption={caption!r}."
        )
    return video_id, entry.get("sen_id"), (caption or "").strip()


def _make_records(root: Path, scan: RootScan, found: _Annotations, name: str) -> list[VideoRecord]:
    orphans = sorted(set(found.captions) - set(found.splits), key=natural_sort_key)
    if orphans:
        count = sum(len(found.captions[v]) for v in orphans)
        found.notes.append(
            f"dropped {count} caption(s) of {len(orphans)} video id(s) listed in no 'videos' entry (e.g. {orphans[0]})"
        )
    uncaptioned = sorted(set(found.splits) - set(found.captions), key=natural_sort_key)
    if uncaptioned:
        found.notes.append(
            f"{len(uncaptioned)} listed video(s) have no caption in any annotation file and are not records "
            f"(e.g. {uncaptioned[0]})"
        )
    records = []
    for video_id in sorted(found.captions.keys() & found.splits.keys(), key=natural_sort_key):
        split = found.splits[video_id]
        path = scan.videos.get(video_id) or _expected_video_path(root, video_id, split, name)
        records.append(VideoRecord(video_id, path, split, tuple(found.captions[video_id])))
    return records


def _expected_video_path(root: Path, video_id: str, split: str, name: str) -> Path:
    """Where the release (or SynthClips) keeps a video that is not on disk."""
    if name == "synth":
        return root / "videos" / f"{video_id}.mp4"
    return root / ("TestVideo" if split == "test" else "TrainValVideo") / f"{video_id}.mp4"
