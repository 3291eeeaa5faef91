"""The clips `vidcap-bench perf` times: the 10 s H.264 test clip it writes (at 854x480 or 1280x720) and
the real camera clip it reads from ../shared/videos when there."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLIP_480P = (480, 854)  # (H, W)
CLIP_720P = (720, 1280)  # (H, W): a phone or laptop camera's video
SHARED_CAMERA_CLIP = Path(__file__).resolve().parents[3] / "shared" / "videos" / "flipping_a_pancake.mkv"  # read there
CLIP_SECONDS, CLIP_FPS = 10, 30


def write_test_clip(path: Path, size: tuple[int, int] = CLIP_480P, seconds: int = CLIP_SECONDS,
                    fps: int = CLIP_FPS) -> Path:
    """A `seconds` long (H, W) H.264 clip: a textured background with a red square (H / 6 wide) moving
    across it (PyAV). At 854x480 it is byte for byte the clip this benchmark has always timed."""
    from benchmark.robustness.cases import encode_h264

    H, W = size
    side = round(80 * H / 480)
    rng = np.random.default_rng(0)
    background = (rng.integers(0, 60, size=(H, W, 3)) + np.linspace(0, 120, W)[None, :, None]).astype(np.uint8)

    def frames():
        for i in range(seconds * fps):
            frame = background.copy()
            x = int((W - side) * i / (seconds * fps))
            frame[H // 2 - side // 2:H // 2 - side // 2 + side, x:x + side] = (220, 40, 40)
            yield frame

    return encode_h264(path, frames(), fps, options={"preset": "veryfast", "crf": "23"})


def write_480p_clip(path: Path, seconds: int = CLIP_SECONDS, fps: int = CLIP_FPS) -> Path:
    """The 10 s 854x480 clip (`write_test_clip` at CLIP_480P)."""
    return write_test_clip(path, CLIP_480P, seconds, fps)
