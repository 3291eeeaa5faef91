"""Cheap checks made before a decoder sees a file, and the one way to word a read error."""

from __future__ import annotations

import os
from pathlib import Path

from vidcap_core.errors import VideoReadError

FIX_HINT = "re-encode it (e.g. `ffmpeg -i in.mp4 -c:v libx264 -pix_fmt yuv420p out.mp4`) or drop it from the dataset"


def video_read_error(path: str | os.PathLike[str], problem: str, advice: str = FIX_HINT) -> VideoReadError:
    """Build the VideoReadError for `path`: '<path>: <problem>; <advice>.'"""
    return VideoReadError(f"cannot read video {str(path)!r}: {problem}; {advice}.")


def check_video_file(path: str | os.PathLike[str]) -> Path:
    """Return `path` as a Path when it is a non-empty regular file, else raise VideoReadError.

    Decoders (decord above all) can crash or hang on inputs that are not files at all,
    so these are checked before any decoder opens the path.
    """
    p = Path(path)
    if not p.exists():
        raise video_read_error(p, "the file does not exist", "check the path and the dataset root")
    if p.is_dir():
        raise video_read_error(p, "it is a directory, not a video file", "pass the path of a video file")
    if not p.is_file():
        raise video_read_error(p, "it is not a regular file (device, socket or pipe)", "pass the path of a video file")
    if not os.access(p, os.R_OK):
        raise video_read_error(p, "permission denied", "make the file readable by this user")
    if p.stat().st_size == 0:
        raise video_read_error(p, "the file is empty (0 bytes)", "re-download or re-create it")
    return p
