"""`vidcap-bench perf`: throughput and latency of each stage, medians over repeats, on this machine.

Every ratio (decord vs PyAV, batched vs clip-by-clip beam search) is measured side by side in the
same invocation, alternating the two contenders inside each repeat so drift hits both alike.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.machine import describe_machine
from benchmark.prepare import DEFAULT_CACHE, ensure_dataset, synth_source
from vidcap_core.files import atomic_write_text as write_text
from vidcap_core.files import write_json

PERF_FRAMES = 32  # frames sampled per clip, as in the benchmark's features
CLIP_480P = (480, 854)  # (H, W)
CLIP_SECONDS, CLIP_FPS = 10, 30


@dataclass
class PerfOptions:
    out: Path = Path("results")
    repeats: int = 5
    cache: Path = DEFAULT_CACHE
    checkpoint: Path | None = None  # a trained model for latency (default: <out>/best/model.pt if present)


@dataclass
class Timing:
    """Median and spread of one measurement, in seconds per repeat."""

    name: str
    seconds: list[float]
    units: float  # work per repeat (frames, clips)
    unit: str

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def per_second(self) -> float:
        return self.units / self.median if self.median > 0 else float("inf")

    @property
    def ms_per_unit(self) -> float:
        return 1000.0 * self.median / self.units

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "median_s": self.median, "min_s": min(self.seconds), "max_s": max(self.seconds),
                "repeats": len(self.seconds), "units": self.units, "unit": self.unit,
                "per_second": self.per_second, "ms_per_unit": self.ms_per_unit}


@dataclass
class PerfResults:
    sections: dict[str, list[Timing]] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    e2e: dict[str, float] = field(default_factory=dict)


def time_it(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - started)
    return seconds


def side_by_side(a: Callable[[], Any], b: Callable[[], Any], repeats: int) -> tuple[list[float], list[float]]:
    """Alternate a and b in every repeat (after one warm-up each)."""
    a()
    b()
    times_a, times_b = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        a()
        times_a.append(time.perf_counter() - started)
        started = time.perf_counter()
        b()
        times_b.append(time.perf_counter() - started)
    return times_a, times_b


# ----------------------------------------------------------------------------- inputs


def write_480p_clip(path: Path, seconds: int = CLIP_SECONDS, fps: int = CLIP_FPS) -> Path:
    """A 10 s 854x480 H.264 clip: a textured background with a square moving across it (PyAV)."""
    import av

    H, W = CLIP_480P
    rng = np.random.default_rng(0)
    background = (rng.integers(0, 60, size=(H, W, 3)) + np.linspace(0, 120, W)[None, :, None]).astype(np.uint8)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "veryfast", "crf": "23"})
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(seconds * fps):
            frame = background.copy()
            x = int((W - 80) * i / (seconds * fps))
            frame[200:280, x:x + 80] = (220, 40, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    return path


def load_model_for_latency(checkpoint: Path | None, scratch: Path) -> tuple[Path, str]:
    """A checkpoint with preprocessing facts: the given/trained one, else an untrained S2VT-LSTM."""
    if checkpoint is not None and checkpoint.is_file():
        return checkpoint, f"trained model {checkpoint}"
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
    return path, "untrained S2VT-LSTM (hidden 128): every caption runs to the 21-token limit, the worst case"


# ----------------------------------------------------------------------------- measurements


def measure_video_decoding(files: dict[str, Path], repeats: int, results: PerfResults) -> None:
    from vidcap_core.video import read_frames

    timings = []
    for label, path in files.items():
        decord_s, pyav_s = side_by_side(lambda: read_frames(path, PERF_FRAMES, 112, backend="decord"),
                                        lambda: read_frames(path, PERF_FRAMES, 112, backend="pyav"), repeats)
        timings += [Timing(f"decord, {label}", decord_s, PERF_FRAMES, "frames"),
                    Timing(f"PyAV, {label}", pyav_s, PERF_FRAMES, "frames")]
        results.ratios[f"decord / PyAV speed, {label}"] = statistics.median(pyav_s) / statistics.median(decord_s)
    results.sections["Video decoding (32 frames sampled evenly, resized to 112x112)"] = timings


def measure_backbones(repeats: int, results: PerfResults) -> None:
    import torchvision

    from vidcap_core.features.backbones import ResNetBackbone, build_backbone
    from vidcap_core.features.extract import encode_frames

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
    results.sections["Feature extraction (CNN forward only, batch 64 frames, frames already decoded)"] = timings


def measure_training(repeats: int, results: PerfResults, feature_dim: int = 256) -> None:
    from vidcap_core.models import ModelConfig, build_model
    from vidcap_core.training.loss import caption_loss

    B, T, L, V = 32, PERF_FRAMES, 14, 60
    torch.manual_seed(0)
    feats = torch.rand(B, T, feature_dim)  # (B, T, F)
    mask = torch.ones(B, T, dtype=torch.bool)  # (B, T)
    captions = torch.randint(4, V, (B, L))  # (B, L)
    captions[:, 0], captions[:, -1] = 1, 2  # BOS ... EOS
    timings = []
    for arch in ("meanpool", "s2vt", "attention"):
        for cell in ("rnn", "gru", "lstm"):
            model = build_model(ModelConfig(arch=arch, cell=cell, feature_dim=feature_dim, vocab_size=V,
                                            embed_size=64, hidden_size=128, attention_size=64, dropout=0.1))
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

            def step() -> None:
                loss_sum, n_tokens = caption_loss(model, feats, mask, captions)
                optimizer.zero_grad(set_to_none=True)
                (loss_sum / n_tokens).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                optimizer.step()

            timings.append(Timing(f"{arch}-{cell}", time_it(step, repeats), B, "clips"))
    results.sections[f"Training (one optimiser step: batch {B} clips x {T} frames, caption length {L}, "
                     "hidden 128, embed 64; the full profile's sizes)"] = timings


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
    results.e2e = {"total_ms": 1000 * statistics.median(totals),
                   **{f"{k}_ms": statistics.median(v) for k, v in parts.items()}}


# ----------------------------------------------------------------------------- report


def markdown(results: PerfResults, seconds: float) -> str:
    lines = ["# vidcap performance", "", "Generated by `vidcap-bench perf`; medians over repeats (min..max in brackets); "
             "ratios measured side by side in the same run.", "", "## Machine", "", describe_machine().markdown(),
             f"- torch threads: {torch.get_num_threads()}", ""]
    for title, timings in results.sections.items():
        lines += [f"## {title}", "", "| what | median | throughput | per unit |", "|---|---|---|---|"]
        for t in timings:
            lines.append(f"| {t.name} | {t.median * 1000:.1f} ms [{min(t.seconds) * 1000:.1f}..{max(t.seconds) * 1000:.1f}] "
                         f"| {t.per_second:,.1f} {t.unit}/s | {t.ms_per_unit:.2f} ms/{t.unit[:-1]} |")
        lines.append("")
    if results.ratios:
        lines += ["## Ratios", "", "| ratio | measured |", "|---|---|"]
        lines += [f"| {name} | {value:.2f}x |" for name, value in results.ratios.items()]
        lines.append("")
    if results.notes:
        lines += ["## Notes", "", *(f"- {n}" for n in results.notes), ""]
    lines.append(f"This measurement took {seconds:.0f} s. Regenerate: `vidcap-bench perf --out results`.")
    return "\n".join(lines) + "\n"


def run_perf(options: PerfOptions) -> Path:
    started = time.perf_counter()
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    results = PerfResults()
    checkpoint = options.checkpoint or out / "best" / "model.pt"
    tiny = synth_source(Path(options.cache), "tiny", None)
    ensure_dataset(tiny, say=lambda _: None)
    synth_clip = sorted((tiny.root / "videos").glob("*.mp4"))[0]
    with tempfile.TemporaryDirectory(prefix="vidcap-perf-") as scratch:
        scratch_dir = Path(scratch)
        clip = write_480p_clip(scratch_dir / "clip_480p_10s.mp4")
        model_path, model_note = load_model_for_latency(checkpoint, scratch_dir)
        results.notes.append(f"Latency model: {model_note}; inputs for decoding benchmarks are random features of its size.")
        measure_video_decoding({"10 s 854x480 H.264": clip, f"SynthClips clip ({synth_clip.name}, 64x64)": synth_clip},
                               options.repeats, results)
        measure_backbones(options.repeats, results)
        measure_training(options.repeats, results)
        measure_decoding(model_path, options.repeats, results)
        measure_end_to_end(model_path, clip, options.repeats, results)
    seconds = time.perf_counter() - started
    write_json(out / "perf.json", {
        "sections": {k: [t.to_dict() for t in v] for k, v in results.sections.items()},
        "ratios": {k: v for k, v in results.ratios.items() if math.isfinite(v)}, "end_to_end": results.e2e,
        "notes": results.notes, "seconds": round(seconds, 1), "machine": describe_machine().to_dict(),
    })
    path = out / "perf.md"
    write_text(path, markdown(results, seconds))
    return path
