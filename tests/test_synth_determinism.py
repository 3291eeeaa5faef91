"""SynthClips are byte-identical: the same frames encode to the same file, and the same preset and
seed give the same folder, file for file, whatever the number of worker processes (issue #14)."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from vidcap_core.files import file_sha256
from vidcap_core.synth import generate_synthclips
from vidcap_core.synth.config import resolve_config
from vidcap_core.synth.generator import MIN_CLIPS_FOR_POOL, assign_splits, build_clip, write_video
from vidcap_core.synth.render import render_clip
from vidcap_core.synth.x264 import X264_AVX512_FLAGS, deterministic_x264_options, x264_would_use_avx512

# Standard-preset clips that came out as a second bitstream now and then before the fix (x264's
# AVX-512 code, on an AVX-512 machine): with the fix taken out this test failed in 6 runs of 6.
FLAKY_CLIPS = (73, 147)
ENCODES = 100


def folder_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): file_sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_same_frames_encode_to_the_same_bytes(tmp_path: Path) -> None:
    cfg = resolve_config("standard", None)
    roles = assign_splits(cfg, 0)
    for index in FLAKY_CLIPS:
        frames = render_clip(build_clip(cfg, 0, index, *roles[index]).plan)  # (T, H, W, 3)
        hashes = set()
        for attempt in range(ENCODES):
            path = tmp_path / f"video{index}_{attempt}.mp4"
            write_video(frames, path, cfg.fps, cfg.crf)
            hashes.add(file_sha256(path))
            path.unlink()
        assert len(hashes) == 1, f"clip {index}: {len(hashes)} different files from {ENCODES} encodes of the same frames"


def test_generating_twice_and_with_two_workers_gives_the_same_files(tmp_path: Path) -> None:
    assert resolve_config("tiny", None).num_clips >= MIN_CLIPS_FOR_POOL  # so workers=2 really uses two processes
    first, second, pooled = tmp_path / "first", tmp_path / "second", tmp_path / "pooled"
    generate_synthclips("tiny", first, seed=0, workers=1)
    generate_synthclips("tiny", second, seed=0, workers=1)
    generate_synthclips("tiny", pooled, seed=0, workers=2)
    reference = folder_hashes(first)
    assert sum(name.endswith(".mp4") for name in reference) == resolve_config("tiny", None).num_clips
    assert folder_hashes(second) == reference
    assert folder_hashes(pooled) == reference


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="AVX-512 is an x86-64 question")
def test_avx512_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    with_avx512, without = tmp_path / "with", tmp_path / "without"
    base = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma bmi2"
    with_avx512.write_text(f"{base} {' '.join(sorted(X264_AVX512_FLAGS))} avx512_vnni\n")
    without.write_text(f"{base} avx512f\n")  # F alone: x264 would not use its AVX-512 code
    assert x264_would_use_avx512(with_avx512)
    assert not x264_would_use_avx512(without)
    assert not x264_would_use_avx512(tmp_path / "missing")
    options = deterministic_x264_options("log-level=error")
    assert options["threads"] == "1" and options["x264-params"].startswith("log-level=error")
    assert ("asm=AVX2" in options["x264-params"]) == x264_would_use_avx512()
