"""decord reader: `get_batch` on the sampled indices only. decord is imported lazily.

decord builds its own frame index when it opens a file (display order, like PyAV's) and
applies rotation metadata itself, but it gets some rotated sizes wrong (it returns
4-channel frames or fails on a 48-pixel-wide rotated stream, for example). So every
batch is checked against the displayed size PyAV reported; a mismatch is a failure
the caller answers by falling back to PyAV.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import numpy as np

from vidcap_core.video.geometry import fit_frame
from vidcap_core.video.info import VideoInfo
from vidcap_core.video.sampling import sample_frame_indices

_LOG_PREFIX = re.compile(r"^\[[0-9:]+\]\s+\S+:\d+:\s*")  # "[01:05:15] /src/video/x.cc:292: "


class DecordFailure(Exception):
    """decord could not open or decode a file: `problem` in words, `detail` decord's own reason, shortened."""

    def __init__(self, problem: str, detail: str | None = None) -> None:
        super().__init__(problem if detail is None else f"{problem} ({detail})")
        self.problem = problem
        self.detail = detail


def _decord() -> ModuleType:
    """Import decord on first use and silence its FFmpeg log (errors reach us as exceptions)."""
    import decord

    decord.logging.set_level(decord.logging.QUIET)
    return decord


def _short_reason(exc: BaseException) -> str:
    """The useful last line of a decord error (they embed C++ source locations and stack traces)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and not line.strip().startswith("Stack trace")]
    reason = _LOG_PREFIX.sub("", lines[0] if lines else exc.__class__.__name__)
    reason = _LOG_PREFIX.sub("", reason)
    return reason[:200]


def _open_reader(path: Path, threads: int = 1):  # -> decord.VideoReader (decord has no type hints)
    decord = _decord()
    try:
        return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=threads)
    except Exception as exc:  # decord raises RuntimeError, DECORDError or AssertionError (zero frames)
        raise DecordFailure("decord cannot open it", _short_reason(exc)) from exc


def _check_frames(frames: np.ndarray, count: int, expected_hw: tuple[int, int] | None) -> None:
    """Reject batches that are not (count, H, W, 3) with the displayed size PyAV reported."""
    if frames.ndim != 4 or frames.shape[0] != count or frames.shape[3] != 3:
        raise DecordFailure(f"decord returned frames of shape {frames.shape}, expected ({count}, H, W, 3)")
    if expected_hw is not None and tuple(frames.shape[1:3]) != expected_hw:
        raise DecordFailure(
            f"decord returned {frames.shape[1]}x{frames.shape[2]} frames but the video displays at "
            f"{expected_hw[0]}x{expected_hw[1]} (height x width; rotation metadata mishandled)"
        )


def read_frames_decord(
    path: Path, num_frames: int, out_hw: tuple[int, int], expected_hw: tuple[int, int] | None = None, threads: int = 1
) -> np.ndarray:
    """`num_frames` evenly sampled frames of `path`, (num_frames, H, W, 3) uint8 RGB, via decord.

    Decodes each distinct sampled index once; `expected_hw` is the displayed (height,
    width) to check decord's output against; `threads`: FFmpeg decoder threads. Raises DecordFailure.
    """
    reader = _open_reader(path, threads)
    indices = sample_frame_indices(len(reader), num_frames)  # (T,)
    wanted = np.unique(indices)  # (U,) sorted, distinct
    try:
        batch = reader.get_batch(wanted.tolist()).asnumpy()  # (U, h, w, 3) full size
    except Exception as exc:  # DECORDError on corrupt or truncated data
        raise DecordFailure("decord failed to decode its frames: the file is corrupt or truncated", _short_reason(exc)) from exc
    _check_frames(batch, len(wanted), expected_hw)
    fitted = np.stack([fit_frame(frame, out_hw) for frame in batch])  # (U, H, W, 3)
    return fitted[np.searchsorted(wanted, indices)]  # (T, H, W, 3), repeats restored


def probe_decord(path: Path, expected_hw: tuple[int, int] | None = None) -> VideoInfo:
    """Frame count, displayed size, average fps and duration of `path`, via decord."""
    reader = _open_reader(path)
    total = len(reader)
    try:
        first = reader.get_batch([0]).asnumpy()  # (1, h, w, 3): the displayed size
        duration_s = float(reader.get_frame_timestamp([total - 1])[0, 1])  # end of the last frame
        fps = float(reader.get_avg_fps())
    except Exception as exc:
        raise DecordFailure("decord failed to read its first frame or timestamps", _short_reason(exc)) from exc
    _check_frames(first, 1, expected_hw)
    return VideoInfo(str(path), total, int(first.shape[1]), int(first.shape[2]), fps, duration_s, "decord")
