"""What probing a video tells: frame count, displayed size, frame rate, duration."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VideoInfo:
    """Facts about one video file.

    `height` and `width` are the displayed size: rotation metadata is already applied, so
    a phone video recorded upright reports height > width. `frames` counts the frames
    in the container's packet index (what `read_frames` samples from). `fps` is the
    average frame rate (frames per second over the whole clip for variable frame rate).
    `backend` names the reader that produced the facts: "decord" or "pyav".
    """

    path: str
    frames: int
    height: int
    width: int
    fps: float
    duration_s: float
    backend: str
