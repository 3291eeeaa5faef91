"""Decoders that fail the way native code does, for IsolatedDecoder tests. They run in the
decoder's spawned child process (which imports this module by name), never in the test process.

A file whose name starts with `segfault` makes the child die of a real SIGSEGV (faulthandler's
deliberate null-pointer read); one starting with `hang` makes it sleep past any time limit, after
recording its pid under `hang.arrivals/` next to the file (so a test can wait until the hang began).
One starting with `rendezvous` is decoded only once RENDEZVOUS_PARTIES such reads, in different
processes, are in flight at the same time (each records its pid under `rendezvous.arrivals/`
next to the file, then waits for the others): a decoder that runs those reads one after another
never gets past the first, and its time limit stops it. Every other file is decoded normally, so
one decoder can serve a mixed batch.
"""

from __future__ import annotations

import faulthandler
import os
import time
from pathlib import Path

import numpy as np

from vidcap_core.video import VideoInfo, probe_video, read_frames

HANG_SECONDS = 600
RENDEZVOUS_PARTIES = 2
RENDEZVOUS_POLL_S = 0.01


def rendezvous_arrivals(video: Path) -> Path:
    """The folder where the reads of `rendezvous*` files next to `video` record their pids."""
    return Path(video).parent / "rendezvous.arrivals"


def hang_arrivals(video: Path) -> Path:
    """The folder where reads of `hang*` files next to `video` record their pids before they hang."""
    return Path(video).parent / "hang.arrivals"


def wait_for_the_other_reads(path: Path) -> None:
    """Record this process's arrival, then wait (with no deadline of its own) until every party arrived."""
    arrivals = rendezvous_arrivals(path)
    arrivals.mkdir(exist_ok=True)
    (arrivals / f"{Path(path).name}.{os.getpid()}").touch()
    while len(list(arrivals.iterdir())) < RENDEZVOUS_PARTIES:
        time.sleep(RENDEZVOUS_POLL_S)


def fail_like_native_code(path: Path) -> None:
    name = Path(path).name
    if name.startswith("segfault"):
        faulthandler.disable()  # keep the child's fatal-error dump out of the test output
        faulthandler._sigsegv()
    if name.startswith("hang"):
        hang_arrivals(path).mkdir(exist_ok=True)
        (hang_arrivals(path) / f"{name}.{os.getpid()}").touch()
        time.sleep(HANG_SECONDS)
    if name.startswith("rendezvous"):
        wait_for_the_other_reads(path)


def faulty_read(path: Path, num_frames: int, size: int | tuple[int, int] = 112) -> np.ndarray:
    fail_like_native_code(path)
    return read_frames(path, num_frames, size)


def faulty_probe(path: Path) -> VideoInfo:
    fail_like_native_code(path)
    return probe_video(path)
