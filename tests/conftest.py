"""Shared fixtures: the real-world sample videos and a writer for tiny real videos (PyAV)."""

from __future__ import annotations

import fractions
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "videos"
PALETTE_LEVELS = (0, 51, 102, 153, 204, 255)  # 6 levels per channel: 216 colours, >= 51 apart


def index_colour(i: int) -> np.ndarray:
    """A distinct RGB colour for frame index `i` (period 216): base-6 digits of i as channel levels."""
    i %= len(PALETTE_LEVELS) ** 3
    digits = (i // 36, (i // 6) % 6, i % 6)
    return np.array([PALETTE_LEVELS[d] for d in digits], dtype=np.uint8)


def colour_index(rgb: np.ndarray) -> int:
    """Inverse of `index_colour` (mod 216) for a decoded colour: the nearest palette entry."""
    levels = np.asarray(PALETTE_LEVELS, dtype=np.float64)
    digits = [int(np.abs(levels - float(c)).argmin()) for c in rgb]
    return digits[0] * 36 + digits[1] * 6 + digits[2]


def write_video(
    path: Path,
    frames: int | np.ndarray,
    size: tuple[int, int] = (48, 64),
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    fps: int = 10,
    pts_ms: Sequence[int] | None = None,
    rotation: int | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode a real video with PyAV and return its path.

    `frames` is a count (frame i is filled with `index_colour(i)`) or a (T, H, W, 3) uint8
    RGB array. `size` is (height, width). `pts_ms` gives each frame's timestamp in
    milliseconds (variable frame rate). `rotation` writes a display-matrix rotation
    (degrees counter-clockwise, like PyAV's `VideoFrame.rotation`).
    """
    import av

    if isinstance(frames, int):
        h, w = size
        frames = np.stack([np.broadcast_to(index_colour(i), (h, w, 3)) for i in range(frames)])
    count, h, w, _ = frames.shape
    with av.open(str(path), mode="w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps, options=options or {})
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        if pts_ms is not None:
            stream.codec_context.time_base = fractions.Fraction(1, 1000)
        if rotation is not None:
            if not hasattr(stream, "set_display_rotation"):
                pytest.skip(f"PyAV {av.__version__} cannot write rotation metadata (needs set_display_rotation)")
            stream.set_display_rotation(rotation)
        for i in range(count):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[i]), format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = int(pts_ms[i]), fractions.Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture
def shared_videos() -> Path:
    """../shared/videos (the real-world sample files); skips when this checkout has none."""
    if not SHARED_VIDEOS.is_dir():
        pytest.skip(f"shared sample videos not found at {SHARED_VIDEOS}")
    return SHARED_VIDEOS


@pytest.fixture(scope="session")
def make_video() -> Callable[..., Path]:
    """`make_video(path, frames, size=(48, 64), codec='libx264', pix_fmt='yuv420p', fps=10, ...)`."""
    return write_video


@pytest.fixture(scope="session")
def frame_colour() -> Callable[[int], np.ndarray]:
    """`frame_colour(i)`: the colour `make_video` paints frame i with."""
    return index_colour


@pytest.fixture(scope="session")
def colour_to_index() -> Callable[[np.ndarray], int]:
    """`colour_to_index(rgb)`: the frame index (mod 216) whose colour is nearest to `rgb`."""
    return colour_index


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch thread (results then do not depend on the machine's core count),
    restoring the previous count after. Test files opt in with
    `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch  # here, not at the top: most test files never load torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 real SynthClips tiny clips (seed 3), shared read-only by the oracle and object-slot tests."""
    from vidcap_core.synth import generate_synthclips

    root = tmp_path_factory.mktemp("synth") / "tiny"
    generate_synthclips("tiny", root, seed=3, num_clips=24, workers=1)
    return root
