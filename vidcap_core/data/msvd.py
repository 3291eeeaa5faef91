"""MSVD (Microsoft Research Video Description Corpus) loader.

Annotations, first found wins (or the file given):
- `MSR Video Description Corpus.csv` / `video_corpus.csv`, header
  `VideoID,Start,End,WorkerID,Source,AnnotationTime,Language,Description`, read with the csv module
  (descriptions hold quoted commas). Rows with `Language == English` and a non-empty Description
  (empty, missing, or the text `nan` left by pandas exports count as empty) are kept. The clip key
  is `{VideoID}_{Start}_{End}` (a Start/End written as `5.0` is read as `5`).
- UT Austin's `AllVideoDescriptions.txt`: `#` lines are comments, other lines are
  `<clip_key> <description>` split at the first whitespace.

A clip left with no caption is not a record. Videos are `YouTubeClips/{key}.avi`, or a file with
that stem anywhere under the root.

Split (the standard 1200 / 100 / 670 train / val / test of 1970 clips): clips are ordered by
`youtube_mapping.txt` (`<clip_key> vid<N>`, ordered by N; clips with captions but no mapping line
follow in sorted order) when that file is under the root, else by sorted clip key (only clips
with captions). The first round(n * 1200 / 1970) clips are train, the next round(n * 100 / 1970)
val, the rest test (round half up), which is exactly 1200 / 100 / 670 for the full corpus. With
fewer clips (fixtures) the same proportions apply in the same order, keeping at least one val and
one test clip when n >= 3. `CaptionDataset.notes` says which order was used.
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

from vidcap_core.data.discovery import (
    RootScan,
    duplicate_note,
    missing_video_note,
    natural_sort_key,
    read_text_file,
    require_root,
    scan_root,
)
from vidcap_core.data.records import CaptionDataset, VideoRecord
from vidcap_core.errors import DatasetError

MSVD_CSV_NAMES = ("MSR Video Description Corpus.csv", "video_corpus.csv")
MSVD_TXT_NAME = "AllVideoDescriptions.txt"
MSVD_MAPPING_NAME = "youtube_mapping.txt"
MSVD_CSV_COLUMNS = ("VideoID", "Start", "End", "WorkerID", "Source", "AnnotationTime", "Language", "Description")
MSVD_REQUIRED_COLUMNS = ("VideoID", "Start", "End", "Language", "Description")
MSVD_STANDARD_SPLIT = (1200, 100, 670)
EXPECTED = f"{MSVD_CSV_NAMES[0]} (or {MSVD_CSV_NAMES[1]} / {MSVD_TXT_NAME}) and YouTubeClips/<clip>.avi"


def load_msvd(root: Path, annotations: Path | None = None, name: str = "msvd") -> CaptionDataset:
    """Read MSVD captions under `root` (or from `annotations`) and assign the standard split."""
    root = require_root(root, name, EXPECTED)
    scan = scan_root(root, MSVD_CSV_NAMES + (MSVD_TXT_NAME, MSVD_MAPPING_NAME))
    path = _annotation_file(root, annotations, scan)
    notes: list[str] = [f"read {path}"]
    if path.suffix.lower() == ".txt":
        captions = read_msvd_descriptions_txt(path, notes)
    else:
        captions = read_msvd_csv(path, notes)
    mapping_path = scan.annotations.get(MSVD_MAPPING_NAME, [None])[0]
    if mapping_path is not None:
        order = _mapping_order(mapping_path, captions, notes)
        notes.append(f"split 1200/100/670 proportions in {MSVD_MAPPING_NAME} order (vid1..vidN) from {mapping_path}")
    else:
        order = sorted(captions, key=natural_sort_key)
        notes.append(f"split 1200/100/670 proportions in sorted clip-key order ({MSVD_MAPPING_NAME} not found under {root})")
    splits = assign_standard_split(order)
    records = _make_records(root, scan, captions, splits)
    notes += duplicate_note(scan) + missing_video_note(records, root)
    return CaptionDataset(name=name, root=root, records=records, notes=notes)


def assign_standard_split(order: list[str]) -> dict[str, str]:
    """Clip key -> split: 1200/100/670 of 1970 in this order, the same proportions for other sizes."""
    n = len(order)
    total = sum(MSVD_STANDARD_SPLIT)
    n_train = math.floor(n * MSVD_STANDARD_SPLIT[0] / total + 0.5)
    n_val = math.floor(n * MSVD_STANDARD_SPLIT[1] / total + 0.5)
    if n >= 3:  # tiny sets: keep val and test non-empty
        n_val = max(n_val, 1)
        n_train = min(n_train, n - n_val - 1)
    splits = {}
    for i, key in enumerate(order):
        splits[key] = "train" if i < n_train else "val" if i < n_train + n_val else "test"
    return splits


def read_msvd_csv(path: Path, notes: list[str]) -> dict[str, list[str]]:
    """Clip key -> English captions, in file order."""
    text = read_text_file(path, "MSVD annotation file")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [c for c in MSVD_REQUIRED_COLUMNS if c not in header]
    if missing:
        raise DatasetError(
            f"MSVD annotation file {path} has header {','.join(header) or '(empty)'}; expected "
            f"{','.join(MSVD_CSV_COLUMNS)} (missing {', '.join(missing)}). Pass the original corpus CSV."
        )
    captions: dict[str, list[str]] = {}
    other_language = empty = 0
    try:
        for row in reader:
            if (row.get("Language") or "").strip().casefold() != "english":
                other_language += 1
                continue
            description = row.get("Description") or ""
            if row.get(None):  # an unquoted comma split the description: join the pieces back
                description = ",".join([description, *row[None]])
            description = description.strip()
            if not description or description.casefold() == "nan":
                empty += 1
                continue
            key = clip_key(row["VideoID"], row["Start"], row["End"], path, reader.line_num)
            captions.setdefault(key, []).append(description)
    except csv.Error as exc:
        raise DatasetError(f"MSVD annotation file {path} is not valid CSV near line {reader.line_num}: {exc}.") from exc
    notes.append(f"kept {sum(map(len, captions.values()))} English captions of {len(captions)} clips; "
                 f"skipped {other_language} non-English and {empty} empty descriptions")
    return captions


def read_msvd_descriptions_txt(path: Path, notes: list[str]) -> dict[str, list[str]]:
    """AllVideoDescriptions.txt: clip key -> captions, in file order."""
    captions: dict[str, list[str]] = {}
    empty = 0
    for number, line in enumerate(read_text_file(path, "MSVD annotation file").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        if not re.fullmatch(r".+_\d+(\.\d+)?_\d+(\.\d+)?", parts[0]):
            raise DatasetError(
                f"Line {number} of {path} starts with {parts[0]!r}, not a clip key like -4wsuPCjDBc_5_15; "
                f"expected '<clip_key> <description>' lines (comments start with #)."
            )
        if len(parts) < 2:
            empty += 1
            continue
        captions.setdefault(parts[0], []).append(parts[1].strip())
    notes.append(f"kept {sum(map(len, captions.values()))} captions of {len(captions)} clips; skipped {empty} empty descriptions")
    return captions


def clip_key(video_id: str, start: str, end: str, path: Path, line: int) -> str:
    """`{VideoID}_{Start}_{End}`, with integral times written without a decimal point."""
    parts = [video_id.strip()]
    for value in (start, end):
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"Line {line} of {path} has Start/End {value!r}; expected whole seconds such as 5.") from exc
        parts.append(str(int(number)) if number.is_integer() else str(value).strip())
    if not parts[0]:
        raise DatasetError(f"Line {line} of {path} has an empty VideoID; fix or remove that row.")
    return "_".join(parts)


def _annotation_file(root: Path, annotations: Path | None, scan: RootScan) -> Path:
    if annotations is not None:
        path = Path(annotations)
        if path.is_dir():
            raise DatasetError(f"MSVD annotation path {path} is a folder; pass the {MSVD_CSV_NAMES[0]} or {MSVD_TXT_NAME} file in it.")
        if not path.is_file():
            raise DatasetError(
                f"MSVD annotation file {path} does not exist; expected {MSVD_CSV_NAMES[0]} (CSV) or "
                f"{MSVD_TXT_NAME}. Check the --annotations path."
            )
        return path
    for filename in MSVD_CSV_NAMES + (MSVD_TXT_NAME,):
        if filename in scan.annotations:
            return scan.annotations[filename][0]
    raise DatasetError(
        f"No MSVD annotation file under {root}: expected {MSVD_CSV_NAMES[0]}, {MSVD_CSV_NAMES[1]} or "
        f"{MSVD_TXT_NAME}. Pass --annotations FILE if it lives elsewhere."
    )


def _mapping_order(path: Path, captions: dict[str, list[str]], notes: list[str]) -> list[str]:
    """Clip keys in youtube_mapping.txt order (vid1, vid2, ...), then unmapped captioned clips sorted."""
    numbered: dict[int, str] = {}
    for number, line in enumerate(read_text_file(path, "MSVD mapping file").splitlines(), start=1):
        if not line.strip():
            continue
        match = re.fullmatch(r"\s*(\S+)\s+vid(\d+)\s*", line)
        if match is None:
            raise DatasetError(f"Line {number} of {path} is {line!r}; expected '<clip_key> vid<N>'.")
        index = int(match.group(2))
        if index in numbered:
            raise DatasetError(f"Line {number} of {path} repeats vid{index}; each vid<N> must appear once.")
        numbered[index] = match.group(1)
    order = [numbered[i] for i in sorted(numbered)]
    mapped = set(order)
    unmapped = sorted((k for k in captions if k not in mapped), key=natural_sort_key)
    if unmapped:
        notes.append(f"{len(unmapped)} captioned clip(s) are not in {path.name} (e.g. {unmapped[0]}); placed after vid{len(order)}")
    return order + unmapped


def _make_records(root: Path, scan: RootScan, captions: dict[str, list[str]], splits: dict[str, str]) -> list[VideoRecord]:
    records = []
    for key in sorted(captions, key=natural_sort_key):
        path = scan.videos.get(key) or root / "YouTubeClips" / f"{key}.avi"
        records.append(VideoRecord(key, path, splits[key], tuple(captions[key])))
    return records
