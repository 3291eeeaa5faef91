"""Public video reading: `probe_video` and `read_frames`, by the fastest path measured per file kind.

Both functions take a path and return plain data, so a caller can run them in a worker
process with a timeout. With `backend="auto"` (the default) a file goes through:

1. cheap checks: it exists, is a regular file, is not empty;
2. PyAV demuxes its packets (no decoding; remembered while the file is unchanged, so a probe
   followed by a read demuxes once): frame count, keyframes, codec and coded size, or a
   VideoReadError for non-videos, audio-only files, unreadable headers and truncation;
3. `choose_decoding` picks how PyAV decodes it (threads, keyframe seeks, skipping unsampled
   non-reference frames): the one place the decode path is chosen, with the measurements.

`backend="decord"` reads with decord instead (PyAV still checks the file first, since decord can
crash or hang on non-videos); `backend="pyav"` is PyAV with the plain single-threaded path that
seeks whenever a keyframe lies ahead, the reference the chosen path is tested against. Every
path returns exactly the frames `sample_frame_indices` names, bit for bit the same.

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
from vidcap_core.video.pyav_backend import (
    SEQUENTIAL,
    PacketIndex,
    PyavDecoding,
    displayed_geometry,
    packet_index,
    probe_pyav,
    read_frames_pyav,
)

Backend = Literal["auto", "decord", "pyav"]
BACKENDS: tuple[str, ...] = get_args(Backend)

PathLike = str | os.PathLike[str]

# The decode rule. Measured by reading each kind with every candidate, alternating them over 7
# repeats (a scratch script; `vidcap-bench perf` re-measures the chosen path, decord and the
# reference path on every run), on this 2-core machine while other engineers' tests ran (load
# average 6-10): wall times were 2-3x the CPU times, so the CPU time (user + sys of the reading
# process, median) ranks the candidates. 32 frames, 112x112 (SynthClips 64x64):
#
#   file kind (frames, keyframes)           decord   PyAV 1 thread   + skip   + 2 threads   + seek>=30
#   perf clip 854x480 H.264 10 s (300, 2)    271 ms       194 ms      155 ms      149 ms       150 ms
#   854x480 H.264 60 s (1800, 8)             664 ms       567 ms      372 ms      434 ms       404 ms
#   854x480 H.264 60 s, keyint 60 (1800, 30) 860 ms       841 ms      603 ms      687 ms       597 ms
#   flipping_a_pancake.mkv 426x240 (310, 3)   88 ms        75 ms       77 ms       92 ms        90 ms
#   SynthClips 64x64, 32 frames (32, 1)      2.8 ms       2.2 ms      2.3 ms      3.1 ms       3.4 ms
#
# (PyAV columns add up left to right: one sequential pass, + skipping unsampled non-reference
# frames, + 2 decoder threads, + seeking when it skips >= 30 frames. The old path, one thread
# seeking whenever a keyframe lies ahead: 200, 525, 678, 74, 2.3 ms. Seeking whenever a keyframe
# lies ahead instead of from 30 frames: within 2% of the last column.)
#
# - decord: 1.2-1.4x PyAV's CPU time on every kind, so never chosen; it stays as backend="decord".
# - skip_unsampled: 20-35% less CPU where the encoder made non-reference B-frames (x264 presets),
#   nothing lost elsewhere; only for the codecs measured and tested bit-exact (H.264, HEVC).
# - threads: at 854x480 two frame threads cost 0-17% more CPU, which an idle second core more than
#   repays (the decode floor in results/perf.md, sequential and threaded, shows it); at 426x240 they
#   cost 20% and at 64x64 35%, where reading several files in parallel (feature extraction) is the
#   better use of the cores: two threads from 640x360 up, one below.
# - seeking: on 60 s clips, seeking to the keyframe before a sampled frame saves 7-13% over one
#   sequential pass; a seek flushes the threaded decoder's pipeline, so it is made only when it
#   skips at least 30 frames, and clips of up to 30 frames decode in one pass.
THREADED_MIN_PIXELS = 640 * 360
DECODE_THREADS = 2  # this machine's cores; more threads only queue on 2 cores
SEEK_MIN_GAP = 30
SKIPPABLE_CODECS = frozenset({"h264", "hevc"})
REFERENCE_DECODING = PyavDecoding(threads=1, seek_min_gap=0, skip_unsampled=False)  # backend="pyav"


def choose_decoding(index: PacketIndex) -> PyavDecoding:
    """How PyAV reads a file of this kind fastest (see the measurements above); any choice returns
    the same frames."""
    height, width = index.coded_hw
    threads = DECODE_THREADS if height * width >= THREADED_MIN_PIXELS else 1
    seek_min_gap = SEEK_MIN_GAP if len(index) > SEEK_MIN_GAP else SEQUENTIAL
    return PyavDecoding(threads=threads, seek_min_gap=seek_min_gap, skip_unsampled=index.codec in SKIPPABLE_CODECS)


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ConfigError(f"unknown video backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def _decord_error(path: Path, failure: DecordFailure) -> VideoReadError:
    return video_read_error(path, failure.problem, "read it with backend='pyav' or 'auto', or re-encode it",
                            detail=failure.detail)


def probe_video(path: PathLike, backend: Backend = "auto") -> VideoInfo:
    """Frame count, displayed size (rotation applied), average fps and duration of a video.

    Probing reads the container's packet index and decodes the first frame only; a file
    can probe fine and still fail in `read_frames` when later frames are corrupt.
    `backend` is "auto" or "pyav" (PyAV), or "decord" (after PyAV checked the file).
    Raises VideoReadError naming the file when it cannot be read.
    """
    _check_backend(backend)
    p = check_video_file(path)
    if backend != "decord":
        return probe_pyav(p)
    geometry = displayed_geometry(p)  # PyAV gatekeeper before decord sees the file
    try:
        return probe_decord(p, (geometry.height, geometry.width))
    except DecordFailure as failure:
        raise _decord_error(p, failure) from failure


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
    - Cost: only the sampled frames are converted and kept, and decoding stops after the
      last one; `choose_decoding` decides threads, keyframe seeks and which unsampled frames
      the decoder may skip. A long video is never held in memory.
    - Errors: VideoReadError naming the file and the reason when it is missing, empty,
      not a video, audio-only, truncated, corrupt where a sampled frame lies, or has no
      decodable frames.

    `backend` is "auto" (the chosen PyAV path), "pyav" (the single-threaded reference path) or
    "decord".
    """
    _check_backend(backend)
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
        raise ConfigError(f"num_frames must be a positive integer, got {num_frames!r}")
    out_hw = output_size(size)
    p = check_video_file(path)
    if backend == "decord":
        geometry = displayed_geometry(p)  # PyAV gatekeeper before decord sees the file
        try:
            return read_frames_decord(p, int(num_frames), out_hw, (geometry.height, geometry.width))
        except DecordFailure as failure:
            raise _decord_error(p, failure) from failure
    index = packet_index(p)
    decoding = REFERENCE_DECODING if backend == "pyav" else choose_decoding(index)
    return read_frames_pyav(p, int(num_frames), out_hw, decoding, index)
