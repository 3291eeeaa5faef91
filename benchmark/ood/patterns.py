"""The generated patterns `vidcap-bench ood` scores: videos that are not SynthClips and that the model never
saw (an FFmpeg testsrc2-like colour-bar chart, a gradient pan, seeded noise, the perf benchmark's textured
480p clip), each written as an H.264 file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from benchmark.robustness.cases import encode_h264

PATTERN_SIZE = (240, 320)  # (H, W) of the generated patterns
PATTERN_FPS = 10
PATTERN_SECONDS = 10  # also the perf clip's length (benchmark.perf.CLIP_SECONDS)
NOISE_SEED = 12  # issue #12


def colour_bar_chart_frame(i: int, frames: int, size: tuple[int, int] = PATTERN_SIZE) -> np.ndarray:
    """Frame i of an FFmpeg testsrc2-like chart: seven colour bars over a grey ramp, a box sliding across."""
    h, w = size
    frame = np.empty((h, w, 3), np.uint8)  # (H, W, 3)
    bars = np.array([[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0],
                     [255, 0, 255], [255, 0, 0], [0, 0, 255]], np.uint8)  # (7, 3)
    frame[: 2 * h // 3] = bars[np.arange(w) * len(bars) // w][None]  # (2H/3, W, 3)
    frame[2 * h // 3 :] = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None]  # grey ramp
    side = h // 4
    x = int((w - side) * i / max(frames - 1, 1))
    y = h // 3 - side // 2
    frame[y : y + side, x : x + side] = 0
    frame[y + side // 4 : y + 3 * side // 4, x + side // 4 : x + 3 * side // 4] = 255
    return frame


def gradient_pan_frame(i: int, frames: int, size: tuple[int, int] = PATTERN_SIZE) -> np.ndarray:
    """Frame i of a window panning across a smooth colour gradient twice the frame's width."""
    h, w = size
    offset = int(w * i / max(frames - 1, 1))
    xs = (np.arange(w) + offset) / (2 * w)  # (W,) in [0, 1)
    ys = np.arange(h) / h  # (H,)
    frame = np.empty((h, w, 3), np.float64)
    frame[..., 0] = xs[None, :]
    frame[..., 1] = ys[:, None]
    frame[..., 2] = 1.0 - 0.5 * (xs[None, :] + ys[:, None])
    return (255 * frame).astype(np.uint8)


def noise_frames(frames: int, size: tuple[int, int] = PATTERN_SIZE, seed: int = NOISE_SEED) -> Iterable[np.ndarray]:
    """`frames` frames of seeded uniform RGB noise, each (H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    for _ in range(frames):
        yield rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)


def write_patterns(folder: Path, seconds: int = PATTERN_SECONDS) -> list[tuple[str, Path, str]]:
    """(name, path, what) of each generated non-SynthClips pattern, written into `folder`."""
    from benchmark.perf import CLIP_480P, CLIP_FPS, write_480p_clip

    folder.mkdir(parents=True, exist_ok=True)
    n = seconds * PATTERN_FPS
    h, w = PATTERN_SIZE
    kind = f"{w}x{h}, {seconds} s at {PATTERN_FPS} fps"
    return [
        ("testsrc2", encode_h264(folder / "testsrc2.mp4", (colour_bar_chart_frame(i, n) for i in range(n)), PATTERN_FPS),
         f"FFmpeg testsrc2-like colour bars over a grey ramp, a box sliding across ({kind})"),
        ("gradient-pan", encode_h264(folder / "gradient_pan.mp4", (gradient_pan_frame(i, n) for i in range(n)), PATTERN_FPS),
         f"a smooth colour gradient panned sideways ({kind})"),
        ("noise", encode_h264(folder / "noise.mp4", noise_frames(n), PATTERN_FPS), f"seeded uniform RGB noise ({kind})"),
        ("perf-480p", write_480p_clip(folder / "perf_480p.mp4", seconds=seconds),
         f"vidcap-bench perf's clip: textured background, a red square crossing ({CLIP_480P[1]}x{CLIP_480P[0]}, "
         f"{seconds} s at {CLIP_FPS} fps)"),
    ]
