"""Cheap checks made before a decoder sees a file, and the one way to word a read error."""

from __future__ import annotations

import os
from pathlib import Path

from vidcap_core.errors import VideoReadError

# What to do, worded for whoever holds the file (a script, a dataset, an upload): the demo turns
# each into its users' terms by these names (demo/handlers.py UPLOAD_ADVICE).
REENCODE = "re-encode it (e.g. `ffmpeg -i in.mp4 -c:v libx264 -pix_fmt yuv420p out.mp4`)"
GET_COMPLETE_COPY = "copy or download the file again, or re-encode the readable part with ffmpeg"
CHECK_PATH = "check the path"
PASS_A_VIDEO = "pass the path of a video file"
RECREATE = "copy, download or create the file again"


def video_read_error(path: str | os.PathLike[str], problem: str, advice: str = REENCODE,
                     detail: BaseException | str | None = None) -> VideoReadError:
    """The VideoReadError for `path`: 'cannot read video <path>: <problem>; <advice>.'

    `problem` says in words what failed; a library's exception or raw text goes to `detail`
    (kept on the error as `.detail`, never in the sentence)."""
    if isinstance(detail, BaseException):
        detail = f"{detail.__class__.__name__}: {detail}"
    return VideoReadError(f"cannot read video {str(path)!r}: {problem}; {advice}.",
                          path=str(path), problem=problem, advice=advice, detail=detail)


def check_video_file(path: str | os.PathLike[str]) -> Path:
    """Return `path` as a Path when it is a non-empty regular file, else raise VideoReadError.

    Decoders (decord above all) can crash or hang on inputs that are not files at all,
    so these are checked before any decoder opens the path.
    """
    p = Path(path)
    if not p.exists():
        raise video_read_error(p, "the file does not exist", CHECK_PATH)
    if p.is_dir():
        raise video_read_error(p, "it is a directory, not a video file", PASS_A_VIDEO)
    if not p.is_file():
        raise video_read_error(p, "it is not a regular file (device, socket or pipe)", PASS_A_VIDEO)
    if not os.access(p, os.R_OK):
        raise video_read_error(p, "permission denied", "make the file readable by this user")
    if p.stat().st_size == 0:
        raise video_read_error(p, "the file is empty (0 bytes)", RECREATE)
    return p
