"""Public video reading: `probe_video` and `read_frames`, decord first with a PyAV fallback.

Both functions take a path and return plain data, so a caller can run them in a worker
process with a timeout. With `backend="auto"` (the default) a file goes through:

1. cheap checks: it exists, is a regular file, is not empty;
2. PyAV opens it and decodes its first frame: this rejects non-videos, audio-only files
   and unreadable headers before decord (which can crash or hang on such input) sees
   them, and gives the displayed size and rotation;
3. decord reads it (`get_batch` on the sampled indices); its output is checked against
   the displayed size;
4. if decord cannot open or decode the file (AV1, which decord's FFmpeg lacks; corrupt
   data; rotated sizes it mishandles), PyAV reads it instead.

Every failure is a VideoReadError whose message names the file, the reason and a fix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from vidcap_core.errors import ConfigError, VideoReadError
from vidcap_core.video.checks import check_video_file, video_read_error
from vidcap_core.video.decord_backend import DecordFailure, probe_decord, read_frames_decord
from vidcap_core.video.geometry import output_size
from vidcap_core.video.info import VideoInfo
from vidcap_core.video.pyav_backend import display_geometry, probe_pyav, read_frames_pyav

Backend = Literal["auto", "decord", "pyav"]
BACKENDS: tuple[str, ...] = get_args(Backend)

PathLike = str | os.PathLike[str]


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ConfigError(f"unknown video backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def _decord_error(path: Path, failure: DecordFailure) -> VideoReadError:
    return video_read_error(path, str(failure), "read it with backend='pyav' or 'auto', or re-encode it")


def _with_decord_reason(error: VideoReadError, failure: DecordFailure) -> VideoReadError:
    return VideoReadError(f"{error} (decord also failed: {failure})")


def probe_video(path: PathLike, backend: Backend = "auto") -> VideoInfo:
    """Frame count, displayed size (rotation applied), average fps and duration of a video.

    Probing reads the container's packet index and decodes the first frame only; a file
    can probe fine and still fail in `read_frames` when later frames are corrupt.
    `backend` is "auto" (decord, PyAV when decord fails), "decord" or "pyav".
    Raises VideoReadError naming the file when it cannot be read.
    """
    _check_backend(backend)
    p = check_video_file(path)
    if backend == "pyav":
        return probe_pyav(p)
    geometry = display_geometry(p)  # PyAV gatekeeper before decord sees the file
    expected_hw = (geometry.height, geometry.width)
    try:
        return probe_decord(p, expected_hw)
    except DecordFailure as failure:
        if backend == "decord":
            raise _decord_error(p, failure) from failure
        try:
            return probe_pyav(p)
        except VideoReadError as error:
            raise _with_decord_reason(error, failure) from error


def read_frames(
    path: PathLike, num_frames: int, size: int | tuple[int, int] = 112, backend: Backend = "auto"
) -> np.ndarray:
    """Read `num_frames` frames spread evenly over a video: (num_frames, H, W, 3) uint8 RGB.

    - Which frames: `sample_frame_indices(total, num_frames)`, the centre frame of each of
      `num_frames` equal segments, in display order (frame order, not timestamps, so a
      variable-frame-rate video is sampled evenly in frames). A video with fewer frames
      than asked repeats the nearest frames, so the result always has `num_frames` frames.
    - Size: `size` is an int (square) or (H, W). Each frame is centre-cropped to the
      aspect ratio of (H, W), then resized to it (bilinear, antialiased): no stretching,
      no padding; the borders of the longer side are cut.
    - Orientation: rotation metadata is applied, so frames come out upright (as players
      show them). Gray, 10-bit and other pixel formats are converted to 8-bit RGB.
    - Cost: only the sampled frames are decoded and kept (decord `get_batch`, or PyAV
      seeking to the keyframe before each sample); a long video is never held in memory.
    - Errors: VideoReadError naming the file and the reason when it is missing, empty,
      not a video, audio-only, truncated, corrupt where a sampled frame lies, or has no
      decodable frames.

    `backend` is "auto" (decord, PyAV when decord fails), "decord" or "pyav".
    """
    _check_backend(backend)
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
        raise ConfigError(f"num_frames must be a positive integer, got {num_frames!r}")
    out_hw = output_size(size)
    p = check_video_file(path)
    if backend == "pyav":
        return read_frames_pyav(p, int(num_frames), out_hw)
    geometry = display_geometry(p)  # PyAV gatekeeper before decord sees the file
    try:
        return read_frames_decord(p, int(num_frames), out_hw, (geometry.height, geometry.width))
    except DecordFailure as failure:
        if backend == "decord":
            raise _decord_error(p, failure) from failure
        try:
            return read_frames_pyav(p, int(num_frames), out_hw)
        except VideoReadError as error:
            raise _with_decord_reason(error, failure) from error
