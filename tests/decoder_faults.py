"""Decoders that fail the way native code does, for IsolatedDecoder tests. They run in the
decoder's spawned child process (which imports this module by name), never in the test process.

A file whose name starts with `segfault` makes the child die of a real SIGSEGV (faulthandler's
deliberate null-pointer read); one starting with `hang` makes it sleep past any time limit.
Every other file is decoded normally, so one decoder can serve a mixed batch.
"""

from __future__ import annotations

import faulthandler
import time
from pathlib import Path

import numpy as np

from vidcap_core.video import VideoInfo, probe_video, read_frames

HANG_SECONDS = 600


def fail_like_native_code(path: Path) -> None:
    name = Path(path).name
    if name.startswith("segfault"):
        faulthandler.disable()  # keep the child's fatal-error dump out of the test output
        faulthandler._sigsegv()
    if name.startswith("hang"):
        time.sleep(HANG_SECONDS)


def faulty_read(path: Path, num_frames: int, size: int | tuple[int, int] = 112) -> np.ndarray:
    fail_like_native_code(path)
    return read_frames(path, num_frames, size)


def faulty_probe(path: Path) -> VideoInfo:
    fail_like_native_code(path)
    return probe_video(path)
