"""The one form every dataset loader returns: video id, video path, split, captions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class VideoRecord:
    """One clip with its reference captions. `split` is one of SPLITS."""

    video_id: str
    path: Path
    split: str
    captions: tuple[str, ...]

    @property
    def exists(self) -> bool:
        return self.path.is_file()


@dataclass
class CaptionDataset:
    """Records of one dataset, plus what loading had to drop or could not find."""

    name: str
    root: Path
    records: list[VideoRecord]
    notes: list[str] = field(default_factory=list)  # e.g. "test_videodatainfo.json has no sentences"

    def split(self, name: str) -> list[VideoRecord]:
        return [r for r in self.records if r.split == name]

    def splits(self) -> list[str]:
        return [s for s in SPLITS if any(r.split == s for r in self.records)]

    def missing(self, split: str | None = None) -> list[VideoRecord]:
        return [r for r in self.records if (split is None or r.split == split) and not r.exists]

    def __iter__(self) -> Iterator[VideoRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)
