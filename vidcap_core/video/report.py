"""One verdict per video file for `vidcap data probe`: its facts, or why it cannot be read."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from vidcap_core.errors import VideoReadError
from vidcap_core.video.info import VideoInfo
from vidcap_core.video.reader import Backend, probe_video, read_frames


@dataclass(frozen=True)
class ProbeReport:
    """`info` when the file is readable, else `error` (the VideoReadError message)."""

    path: str
    info: VideoInfo | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.info is not None

    def as_json(self) -> dict[str, Any]:
        """{"path", "ok": true, "frames", "height", "width", "fps", "duration_s"} or {"path", "ok": false, "error"}."""
        if self.info is None:
            return {"path": self.path, "ok": False, "error": self.error}
        i = self.info
        return {
            "path": self.path, "ok": True, "frames": i.frames, "height": i.height, "width": i.width,
            "fps": round(i.fps, 3), "duration_s": round(i.duration_s, 3),
        }  # fmt: skip


def check_video(path: str | os.PathLike[str], num_frames: int = 16, backend: Backend = "auto") -> ProbeReport:
    """Probe `path` and, when `num_frames` > 0, decode that many sampled frames to prove it reads.

    Never raises for a bad video: the VideoReadError message becomes the report's `error`.
    """
    try:
        info = probe_video(path, backend=backend)
        if num_frames > 0:
            read_frames(path, num_frames, backend=backend)
    except VideoReadError as exc:
        return ProbeReport(str(path), error=str(exc))
    return ProbeReport(str(path), info=info)


def format_reports_table(reports: list[ProbeReport]) -> str:
    """An aligned text table: one row per file, the error under each unreadable one."""
    header = ("STATUS", "FRAMES", "HxW", "FPS", "DURATION", "PATH")
    rows = [header]
    errors: dict[int, str] = {}
    for report in reports:
        i = report.info
        if i is None:
            errors[len(rows)] = report.error or ""
            rows.append(("FAIL", "-", "-", "-", "-", report.path))
        else:
            rows.append(("ok", str(i.frames), f"{i.height}x{i.width}", f"{i.fps:.2f}", f"{i.duration_s:.2f}s", report.path))
    widths = [max(len(row[c]) for row in rows) for c in range(len(header) - 1)]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join([cell.ljust(w) for cell, w in zip(row, widths)] + [row[-1]]))
        if n in errors:
            lines.append(f"    {errors[n]}")
    readable = sum(r.ok for r in reports)
    lines.append(f"{readable} of {len(reports)} videos readable")
    return "\n".join(lines)
