"""The stage measurements of `vidcap-bench perf`, each adding its timings to `PerfResults`: video
decoding (chosen path vs reference PyAV vs decord) and the decode floor, feature extraction, one
training step per full-profile architecture, caption decoding (batched vs clip-by-clip beam search) and
`Captioner.caption` end to end; and the model they time."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.perf.timing import PerfResults, Timing, latency_row, round_robin, side_by_side, time_it

PERF_FRAMES = 32  # frames sampled per clip, as in the benchmark's features


def load_model_for_latency(checkpoint: Path | None, scratch: Path) -> tuple[Path, str]:
    """A checkpoint with preprocessing facts: the given/trained one when this code can caption raw video
    with it, else an untrained S2VT-LSTM."""
    from vidcap_core.errors import VidcapError
    from vidcap_core.pipeline import Captioner

    refused = ""
    if checkpoint is not None and checkpoint.is_file():
        try:
            Captioner.from_checkpoint(checkpoint, device="cpu")
            return checkpoint, f"trained model {checkpoint}"
        except VidcapError as exc:  # e.g. trained on backbone weights other than the committed ones
            refused = f"{checkpoint} cannot caption raw video with this code ({exc}); "
    from vidcap_core.checkpoint import preprocessing_from_meta, save_checkpoint
    from vidcap_core.features.backbones import build_backbone
    from vidcap_core.features.extract import extraction_meta
    from vidcap_core.models import ModelConfig, build_model
    from vidcap_core.text import Vocabulary

    backbone = build_backbone("synth-cnn")
    meta = extraction_meta(backbone, PERF_FRAMES, backbone.input_size, grid=False)
    vocab = Vocabulary.build(["a small red circle moves left and then a big blue square grows"], min_count=1)
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="s2vt", cell="lstm", feature_dim=int(meta["feature_dim"]),
                                    vocab_size=len(vocab), embed_size=64, hidden_size=128, max_tokens=21))
    path = scratch / "untrained.pt"
    save_checkpoint(path, model, vocab.to_dict(), preprocessing_from_meta(meta))
    return path, refused + "untrained S2VT-LSTM (hidden 128): every caption runs to the 21-token limit, the worst case"


def measure_video_decoding(files: dict[str, Path], repeats: int, results: PerfResults) -> None:
    """Per file kind: the chosen path (auto), the single-threaded reference path and decord, side by side."""
    from vidcap_core.video import read_frames
    from vidcap_core.video.pyav_backend import index_packets
    from vidcap_core.video.reader import choose_decoding

    timings = []
    for label, path in files.items():
        paths = {"chosen": lambda: read_frames(path, PERF_FRAMES, 112),
                 "reference PyAV": lambda: read_frames(path, PERF_FRAMES, 112, backend="pyav"),
                 "decord": lambda: read_frames(path, PERF_FRAMES, 112, backend="decord")}
        seconds = round_robin(paths, repeats)
        decoding = choose_decoding(index_packets(path))
        timings += [Timing(f"{name}, {label}" + (f" ({decoding_text(decoding)})" if name == "chosen" else ""),
                           seconds[name], PERF_FRAMES, "frames") for name in paths]
        for name in ("reference PyAV", "decord"):
            results.ratios[f"chosen path speed / {name}, {label}"] = (
                statistics.median(seconds[name]) / statistics.median(seconds["chosen"]))
    results.sections["Video decoding (32 frames sampled evenly, resized to 112x112)"] = timings


def decoding_text(decoding: Any) -> str:
    from vidcap_core.video.pyav_backend import SEQUENTIAL

    seek = "one pass" if decoding.seek_min_gap >= SEQUENTIAL else f"seek when >= {decoding.seek_min_gap} frames"
    return f"PyAV, {decoding.threads} thread(s), {seek}, {'skips unsampled' if decoding.skip_unsampled else 'no skipping'}"


def decode_every_frame(path: Path, threads: int) -> int:
    """Decode every frame of `path` in one sequential pass with `threads` decoder threads, converting
    none: the least work any caption of the clip needs when its samples span every keyframe."""
    from vidcap_core.video.pyav_backend import open_container, video_stream

    count = 0
    with open_container(path) as container:
        for packet in container.demux(video_stream(container, path, threads)):
            count += len(packet.decode())
    return count


def measure_decode_floor(clip: Path, repeats: int, results: PerfResults) -> Timing:
    from vidcap_core.video.reader import DECODE_THREADS

    frames = decode_every_frame(clip, DECODE_THREADS)
    timing = Timing(f"decode floor: all {frames} frames of the 10 s clip, sequential, {DECODE_THREADS} threads",
                    time_it(lambda: decode_every_frame(clip, DECODE_THREADS), repeats), frames, "frames")
    results.sections["Decode floor (every frame decoded, no conversion)"] = [timing]
    return timing


def measure_backbones(repeats: int, results: PerfResults) -> None:
    import torchvision

    from vidcap_core.features.backbones import ResNetBackbone, build_backbone
    from vidcap_core.features.extract import encode_clips, encode_frames

    candidates = [
        ("synth-cnn (committed weights)", build_backbone("synth-cnn"), 256),
        ("random (synth-cnn architecture, untrained)", build_backbone("random"), 256),
        ("resnet18 (random weights: compute cost only, not an ImageNet model)",
         ResNetBackbone("resnet18", torchvision.models.resnet18(weights=None)).eval(), 64),
    ]
    timings = []
    rng = np.random.default_rng(0)
    for label, backbone, count in candidates:
        H, W = backbone.input_size
        frames = rng.integers(0, 256, size=(count, H, W, 3), dtype=np.uint8)
        seconds = time_it(lambda: encode_frames(backbone, frames, batch_size=64, grid=False), repeats)
        timings.append(Timing(f"{label}, {H}x{W}", seconds, count, "frames"))
    slots = build_backbone("synth-slots")
    clips = list(rng.integers(0, 256, size=(8, 32, *slots.input_size, 3), dtype=np.uint8))  # 8 clips of 32 frames
    seconds = time_it(lambda: encode_clips(slots, clips, batch_size=64, grid=True), repeats)
    timings.append(Timing("synth-slots (synth-cnn, then object tracking per clip), 64x64", seconds, 8 * 32, "frames"))
    results.sections["Feature extraction (CNN forward only, batch 64 frames, frames already decoded)"] = timings


def measure_training(repeats: int, results: PerfResults) -> None:
    """One optimiser step of every architecture the full profile trains, as its runs train it (benchmark/
    step_timing.py: batch 64, hidden 128, the real feature shapes and losses, one torch thread each);
    `vidcap-bench perf-training` adds the step's FLOPs, the machine's limit and another revision beside it."""
    from benchmark.identity import BENCH_TORCH_THREADS
    from benchmark.step_timing import Sizes, build_step, full_profile_cases
    from vidcap_core.training.loop import torch_thread_count

    sizes = Sizes()
    with torch_thread_count(BENCH_TORCH_THREADS):
        timings = [Timing(case.name, time_it(build_step(case, sizes).run, repeats), sizes.batch, "clips")
                   for case in full_profile_cases()]
    results.sections[f"Training (one optimiser step as the full profile trains: batch {sizes.batch} clips x "
                     f"{sizes.frames} frames, hidden {sizes.hidden}, embed {sizes.embed}, {BENCH_TORCH_THREADS} torch "
                     "thread; FLOPs against the machine's limit: perf_training.md)"] = timings


def measure_decoding(checkpoint: Path, repeats: int, results: PerfResults) -> None:
    from vidcap_core.checkpoint import load_checkpoint
    from vidcap_core.decoding import beam_search, beam_search_unbatched, greedy_decode

    loaded = load_checkpoint(checkpoint)
    model = loaded.model.eval()
    F = loaded.config.feature_dim
    torch.manual_seed(0)
    one = torch.rand(1, PERF_FRAMES, F)  # (1, T, F)
    batch = torch.rand(64, PERF_FRAMES, F)  # (64, T, F)
    latency = [Timing("greedy, 1 clip", time_it(lambda: greedy_decode(model, one), repeats * 4), 1, "clips")]
    for k in (2, 5, 10):
        latency.append(Timing(f"beam {k}, 1 clip", time_it(lambda: beam_search(model, one, beam_size=k), repeats * 4), 1, "clips"))
    results.sections[f"Caption decoding latency from cached features ({loaded.config.arch}-{loaded.config.cell})"] = latency
    batched, unbatched = side_by_side(lambda: beam_search(model, batch, beam_size=5),
                                      lambda: beam_search_unbatched(model, batch, beam_size=5), max(2, repeats // 2))
    results.sections["Beam search, batch of 64 clips, beam 5: batched vs clip by clip"] = [
        Timing("batched (all 64 x 5 beams per step)", batched, 64, "clips"),
        Timing("clip by clip (64 calls)", unbatched, 64, "clips"),
    ]
    results.ratios["batched / clip-by-clip beam search speedup (batch 64, beam 5; target >= 10x)"] = (
        statistics.median(unbatched) / statistics.median(batched))


def measure_end_to_end(checkpoint: Path, clip: Path, repeats: int, results: PerfResults) -> None:
    from vidcap_core.pipeline import Captioner

    captioner = Captioner.from_checkpoint(checkpoint, device="cpu")
    options = {"beam": 1, "no_repeat_ngram": 0}  # greedy, repetition block off: the benchmark's setting
    captioner.caption(clip, **options)  # warm-up
    parts: dict[str, list[float]] = {}
    totals = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = captioner.caption(clip, **options)
        totals.append(time.perf_counter() - started)
        for key, value in result.timings_ms.items():
            parts.setdefault(key, []).append(value)
    results.sections["End to end: `Captioner.caption` of a 10 s 854x480 H.264 clip (greedy)"] = [
        Timing("total", totals, 1, "clips"),
        *(Timing(f"of which {key}", [v / 1000 for v in values], 1, "clips") for key, values in parts.items()),
    ]
    results.e2e = {"total_ms": 1000 * statistics.median(totals), "total_min_ms": 1000 * min(totals),
                   "total_max_ms": 1000 * max(totals), **{f"{k}_ms": statistics.median(v) for k, v in parts.items()}}
    results.latency.append(latency_row("`Captioner.caption` of the 10 s 854x480 clip (in process, warm)", totals,
                                       "<= 0.3 s"))
