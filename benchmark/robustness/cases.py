"""The robustness inputs: broken files generated here (truncated, random payload, no frames, absurd
dimensions, one frame, audio only, text named .mp4), two good ones, and the real-world samples in
../shared/videos. Shared with tests/test_robustness.py, so the report and the tests cover the same files.

Every generated H.264 clip goes through `encode_h264` (with x264 options `QUIET_X264` by default): the
one place that decides how the benchmark's own clips are encoded (robustness cases, the OOD patterns,
the perf clip); it writes with the library's one H.264 writer, the one SynthClips uses.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidcap_core.synth.x264 import deterministic_x264_options, write_h264_mp4

SHARED_VIDEOS = Path(__file__).resolve().parents[3] / "shared" / "videos"
CLIP_HW = (48, 64)  # (H, W) of the generated clips: small, so every case encodes in milliseconds
CLIP_FRAMES = 40
HUGE_SIDE = 60000  # what the patched header claims: 60000 x 60000 (10.8 GB per RGB frame if believed)
RANDOM_SEED = 6  # issue #6
HEADER_BYTES = 1024  # "random behind a header": the first KB of a real mp4 kept, the rest random
QUIET_X264 = deterministic_x264_options("log-level=error")  # the same bytes on every run (issue #14)


@dataclass(frozen=True)
class RobustnessCase:
    name: str  # unique and short: "truncated-50", "shared-corrupted.mp4"
    path: Path
    what: str  # one line for the report
    readable: bool | None = None  # True: must give a caption; False: must be refused; None: either is fine


# ----------------------------------------------------------------------------- case files


def encode_h264(path: Path, frames: Iterable[np.ndarray], fps: int = 10, options: dict[str, str] = QUIET_X264,
                container_options: dict[str, str] | None = None) -> Path:
    """An H.264 yuv420p mp4 of (H, W, 3) uint8 RGB frames at `path` (the first frame sets the size), by the
    library's one writer (`vidcap_core.synth.x264.write_h264_mp4`) with the benchmark's defaults.
    Written in place, not atomically: every caller writes into a scratch folder of its own, and
    `movflags=faststart` needs the muxer to reopen the file by name."""
    write_h264_mp4(path, frames, fps, options, container_options)
    return path


def ramp_frames(frames: int, size: tuple[int, int]) -> Iterable[np.ndarray]:
    """Frame i is a flat colour ramped with i, with a white corner so frames are not all flat."""
    h, w = size
    for i in range(frames):
        rgb = np.empty((h, w, 3), np.uint8)  # (H, W, 3)
        rgb[...] = ((i * 37) % 256, (i * 91) % 256, (255 - i * 23) % 256)
        rgb[: h // 2, : w // 2] = 255
        yield rgb


def encode_clip(path: Path, frames: int, size: tuple[int, int] = CLIP_HW, fps: int = 10,
                container_options: dict[str, str] | None = None) -> Path:
    """A real H.264 clip of `frames` frames of (H, W) = `size` (`ramp_frames`)."""
    return encode_h264(path, ramp_frames(frames, size), fps, container_options=container_options)


def write_zero_frame_video(path: Path) -> Path:
    """An mp4 with a video stream and no frames: the header only (`start_encoding`, no packets)."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=10, options=QUIET_X264)
        stream.width, stream.height, stream.pix_fmt = CLIP_HW[1], CLIP_HW[0], "yuv420p"
        container.start_encoding()
    return path


def write_audio_only(path: Path, seconds: float = 0.5) -> Path:
    """An mp4 holding one AAC audio stream (a sine tone) and no video stream."""
    import av

    rate, n = 44100, 1024  # AAC frames are 1024 samples
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=rate)
        for k in range(int(seconds * rate / n)):
            t = (np.arange(n) + k * n) / rate
            samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]  # (1, n) mono
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, k * n
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def claim_dimensions(data: bytes, width: int, height: int) -> bytes:
    """The mp4 `data` with its track header (tkhd) and sample entry (avc1) rewritten to claim
    width x height; the H.264 parameter sets inside still say the real size.

    tkhd (version 0) keeps width/height as 16.16 fixed point 80 bytes after its type field;
    avc1 keeps them as 16-bit integers 28 bytes after its type field.
    """
    out = bytearray(data)
    tkhd, avc1 = out.find(b"tkhd"), out.find(b"avc1")
    if tkhd < 0 or avc1 < 0 or out[tkhd + 4] != 0:
        raise ValueError("expected an H.264 mp4 with a version-0 tkhd box")
    out[tkhd + 80 : tkhd + 88] = (width << 16).to_bytes(4, "big") + (height << 16).to_bytes(4, "big")
    out[avc1 + 28 : avc1 + 32] = min(width, 0xFFFF).to_bytes(2, "big") + min(height, 0xFFFF).to_bytes(2, "big")
    return bytes(out)


def seeded_bytes(n: int, seed: int = RANDOM_SEED) -> bytes:
    """`n` pseudo-random bytes, the same on every run (os.urandom cannot be seeded)."""
    return random.Random(seed).randbytes(n)


GENERATED_CASE_NAMES = ("valid", "truncated-10", "truncated-50", "truncated-90", "random-after-header", "random-payload",
                        "zero-frames", "huge-dimensions", "one-frame", "audio-only", "text-as-mp4")  # make_generated_cases' order


def make_generated_cases(root: Path) -> list[RobustnessCase]:
    """Write the broken (and two good) inputs into `root`; deterministic, about a second in all."""
    root.mkdir(parents=True, exist_ok=True)
    valid = encode_clip(root / "valid.mp4", CLIP_FRAMES)  # moov at the end (FFmpeg's default layout)
    whole = valid.read_bytes()
    cases = [RobustnessCase("valid", valid, f"a good {CLIP_FRAMES}-frame H.264 mp4 (the reference)", True)]
    for percent in (10, 50, 90):
        cut = root / f"truncated_{percent}.mp4"
        cut.write_bytes(whole[: len(whole) * percent // 100])
        cases.append(RobustnessCase(f"truncated-{percent}", cut, f"the valid clip cut after {percent}% of its bytes", False))

    random_tail = root / "random_tail.mp4"
    random_tail.write_bytes(whole[:HEADER_BYTES] + seeded_bytes(len(whole) - HEADER_BYTES))
    cases.append(RobustnessCase("random-after-header", random_tail,
                                f"the first {HEADER_BYTES} bytes of the valid clip, then seeded random bytes", None))

    indexed = encode_clip(root / "faststart.mp4", CLIP_FRAMES, container_options={"movflags": "faststart"})
    data = indexed.read_bytes()
    payload = data.find(b"mdat") + 4  # faststart: ftyp, moov (the whole index), then mdat
    random_payload = root / "random_payload.mp4"
    random_payload.write_bytes(data[:payload] + seeded_bytes(len(data) - payload, RANDOM_SEED + 1))
    indexed.unlink()
    cases.append(RobustnessCase("random-payload", random_payload,
                                "a valid index (faststart) over seeded random frame bytes", None))

    cases.append(RobustnessCase("zero-frames", write_zero_frame_video(root / "no_frames.mp4"),
                                "an mp4 with a video stream header and no frames", False))
    small = encode_clip(root / "tiny_16.mp4", 10, size=(16, 16)).read_bytes()
    huge = root / "huge_dims.mp4"
    huge.write_bytes(claim_dimensions(small, HUGE_SIDE, HUGE_SIDE))
    (root / "tiny_16.mp4").unlink()
    cases.append(RobustnessCase("huge-dimensions", huge,
                                f"a 16x16 H.264 mp4 whose tkhd/avc1 headers claim {HUGE_SIDE}x{HUGE_SIDE}", None))
    cases.append(RobustnessCase("one-frame", encode_clip(root / "one_frame.mp4", 1), "a one-frame H.264 mp4", True))
    cases.append(RobustnessCase("audio-only", write_audio_only(root / "audio_only.mp4"),
                                "an mp4 with one AAC audio stream and no video", False))
    text = root / "notes.mp4"
    text.write_text("These are meeting notes, not a video.\n" * 40)
    cases.append(RobustnessCase("text-as-mp4", text, "a text file renamed to .mp4", False))
    return cases


SHARED_EXPECTED = {"corrupted.mp4": False, "flipping_a_pancake.mkv": True, "video_90.mov": True, "unordered.mov": True}


def shared_cases(folder: Path = SHARED_VIDEOS) -> list[RobustnessCase]:
    """Every sample in ../shared/videos (its README.md aside); empty when the folder is absent."""
    if not folder.is_dir():
        return []
    return [RobustnessCase(f"shared-{p.name}", p, f"real-world sample {p.name} (../shared/videos)", SHARED_EXPECTED.get(p.name))
            for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() != ".md"]


def all_cases(root: Path, shared: Path | None = SHARED_VIDEOS) -> list[RobustnessCase]:
    """The generated cases (written into `root`) followed by the shared samples (none when `shared` is None or absent)."""
    return make_generated_cases(root) + (shared_cases(shared) if shared is not None else [])

