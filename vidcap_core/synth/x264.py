"""libx264 options under which encoding the same frames gives the same bytes on every run, and the one
H.264 writer (`write_h264_mp4`) that SynthClips and the benchmark's generated clips both use.

x264's AVX-512 code (core 165, the libx264 bundled with PyAV 18) made about 1 in 200 encodes of
our 64x64 clips come out as a second bitstream from identical yuv420p input, in one process and
across processes: which of the two depends on the process's heap, not on the frames. Measured
(issue #14): with x264's CPU detection on an AVX-512 machine, clip video73 of the standard preset
gave 6 odd files in 2000 encodes, 82 in 3000 with `asm=AVX512`, none in 3000 with `asm=AVX2`;
`mbtree=0` also stops it but makes the files 64 % larger. The likely culprit is the AVX-512
`mbtree_propagate_list`, which handles 8 macroblocks per step and reads past rows of 4 (our
lowres frames are 4 macroblocks wide); at 128x128 (8 wide) the same clip was stable.

So on CPUs where x264 would pick its AVX-512 code we cap it at AVX2 (`asm=AVX2`), which is also
what x264 runs on AVX2-only machines. Elsewhere (no AVX-512, not x86-64, no /proc/cpuinfo) x264
keeps its own choice: forcing AVX2 on a CPU without it would crash, and other architectures do
not know the name. `threads=1` because x264's frame threads are another source of variation.
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np

CPUINFO = Path("/proc/cpuinfo")
# x264 uses its AVX-512 code only when all of these are present (and the OS saves zmm state,
# which the Linux kernel reflects by listing the flags at all).
X264_AVX512_FLAGS = frozenset({"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"})
CAP_AT_AVX2 = "asm=AVX2"


@functools.cache
def x264_would_use_avx512(cpuinfo: Path = CPUINFO) -> bool:
    """True on an x86-64 CPU whose flags (Linux /proc/cpuinfo) include every AVX-512 set x264 needs."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return X264_AVX512_FLAGS <= set(value.split())
    return False


def deterministic_x264_options(*x264_params: str) -> dict[str, str]:
    """Options for PyAV's `add_stream("libx264", options=...)`: one thread, and `x264_params`
    ("key=value" strings, e.g. "log-level=error") plus `asm=AVX2` where x264 would pick AVX-512."""
    params = [*x264_params, *([CAP_AT_AVX2] if x264_would_use_avx512() else [])]
    return {"threads": "1", **({"x264-params": ":".join(params)} if params else {})}


def write_h264_mp4(target: Path | BinaryIO, frames: Iterable[np.ndarray], fps: int, options: Mapping[str, str],
                   container_options: Mapping[str, str] | None = None) -> None:
    """The one H.264 writer: (H, W, 3) uint8 RGB frames as a yuv420p mp4 into `target`, a path or a binary
    file opened for writing; the first frame sets the size (no frames: a file with no video stream).

    `options` go to libx264 as given (callers start from `deterministic_x264_options` so the same frames
    give the same bytes); its "threads" also sets the codec context's thread count. Nothing here is
    atomic: SynthClips wraps it in `files.atomic_write`; a path is needed where the muxer reopens the
    file by name (`movflags=faststart` in `container_options`).
    """
    import av  # heavy; only encoding needs it

    with av.open(str(target) if isinstance(target, Path) else target, mode="w", format="mp4",
                 options=dict(container_options or {})) as container:
        stream = None
        for frame in frames:
            if stream is None:
                stream = container.add_stream("libx264", rate=fps, options=dict(options))
                stream.height, stream.width = frame.shape[:2]  # (H, W, 3)
                stream.pix_fmt = "yuv420p"
                if "threads" in options:
                    stream.codec_context.thread_count = int(options["threads"])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        if stream is not None:
            container.mux(stream.encode(None))  # flush the encoder's delayed frames
