"""Counting a dataset's splits (`vidcap data stats`) and asking for a split that must not be empty."""

from __future__ import annotations

from typing import Any

from vidcap_core.data.records import SPLITS, CaptionDataset, VideoRecord
from vidcap_core.errors import ConfigError, DatasetError

STAT_FIELDS = ("videos", "captions", "missing_videos")


def split_counts(records: list[VideoRecord]) -> dict[str, int]:
    """Videos with at least one caption, their captions, and those among them with no file."""
    with_captions = [r for r in records if r.captions]
    return {
        "videos": len(with_captions),
        "captions": sum(len(r.captions) for r in with_captions),
        "missing_videos": sum(1 for r in with_captions if not r.exists),
    }


def dataset_stats(ds: CaptionDataset) -> dict[str, Any]:
    """`{"dataset", "root", "splits": {split: {"videos", "captions", "missing_videos"}}, "total", "notes"}`.

    Every split in SPLITS is listed, with zeros when it is empty, so the layout never changes.
    """
    return {
        "dataset": ds.name,
        "root": str(ds.root),
        "splits": {split: split_counts(ds.split(split)) for split in SPLITS},
        "total": split_counts(ds.records),
        "notes": list(ds.notes),
    }


def format_stats_table(stats: dict[str, Any]) -> str:
    """The stats dict as an aligned text table, followed by the loader's notes."""
    header = ("split", *STAT_FIELDS)
    rows = [(split, *(str(counts[f]) for f in STAT_FIELDS)) for split, counts in stats["splits"].items()]
    rows.append(("total", *(str(stats["total"][f]) for f in STAT_FIELDS)))
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip()

    lines = [f"{stats['dataset']} at {stats['root']}", line(header), *(line(r) for r in rows)]
    if stats.get("notes"):
        lines += ["notes:", *(f"- {note}" for note in stats["notes"])]
    return "\n".join(lines)


def require_split(ds: CaptionDataset, split: str) -> list[VideoRecord]:
    """The records of `split`, or a DatasetError when it has no video with captions."""
    if split not in SPLITS:
        raise ConfigError(f"Unknown split {split!r}; choose one of {', '.join(SPLITS)}.")
    records = [r for r in ds.split(split) if r.captions]
    if records:
        return records
    present = ", ".join(f"{s} ({len(ds.split(s))})" for s in ds.splits()) or "none"
    raise DatasetError(
        f"split {split!r} of {ds.name} at {ds.root} has no videos with captions; splits with videos: {present}. "
        "Check the annotations' split values, raise --max-videos, or use another split."
    )
