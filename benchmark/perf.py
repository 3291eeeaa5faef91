"""`vidcap-bench perf`: throughput and latency of each stage, medians over repeats, on this machine.

Every ratio (chosen decode path vs the reference path and decord, batched vs clip-by-clip beam
search) is measured side by side in the same invocation, alternating the contenders inside each
repeat so drift hits both alike. The report also gives the latencies a user sees (`Captioner.caption`
of the 10 s clip, the first `/caption` request of a freshly started demo, then `/caption` at the page's
beam size on a SynthClips clip, the real camera clip of ../shared/videos and a 10 s 1280x720 clip, and
click to caption in a real browser on the same three, measured by tests/test_demo_browser.py), the
decode floor they are compared with, the
load average before and after, and a warning when other work shared the machine: two runs are
comparable only when neither warns. "Other work" is the CPU time the machine spent outside this
run's own process tree (`OwnWork`: vidcap-bench perf, the demo it starts, their children), so the
run's own load never makes it warn.
"""

from __future__ import annotations

import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from benchmark.machine import available_cores, describe_machine
from benchmark.prepare import DEFAULT_CACHE, ensure_dataset, synth_source
from benchmark.tables import fmt, markdown_table
from vidcap_core.files import atomic_write_text as write_text
from vidcap_core.files import write_json
from vidcap_core.options import READABLE

PERF_FRAMES = 32  # frames sampled per clip, as in the benchmark's features
CLIP_480P = (480, 854)  # (H, W)
CLIP_720P = (720, 1280)  # (H, W): a phone or laptop camera's video
SHARED_CAMERA_CLIP = Path(__file__).resolve().parents[2] / "shared" / "videos" / "flipping_a_pancake.mkv"  # read there
CLIP_SECONDS, CLIP_FPS = 10, 30
BUSY_LOAD_PER_CORE = 0.5  # other work keeping more than cores x this busy on average shared the run
BROWSER_RESULT = "perf_browser.json"  # written by tests/test_demo_browser.py when VIDCAP_PERF_BROWSER names it
DEMO_START_TIMEOUT_S = 600.0


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
    latency: list[dict[str, Any]] = field(default_factory=list)  # rows of the user-facing latency table
    load: dict[str, Any] = field(default_factory=dict)  # load averages before/after, other work, cores, warning


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


# ----------------------------------------------------------------------------- measurements


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


def round_robin(contenders: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Seconds per repeat of each contender, taking turns inside each repeat (order reversed every
    other repeat), after one warm-up each."""
    for fn in contenders.values():
        fn()
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    for r in range(repeats):
        order = list(contenders.items())
        for name, fn in order if r % 2 == 0 else reversed(order):
            started = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - started)
    return seconds


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
    results.e2e = {"total_ms": 1000 * statistics.median(totals), "total_min_ms": 1000 * min(totals),
                   "total_max_ms": 1000 * max(totals), **{f"{k}_ms": statistics.median(v) for k, v in parts.items()}}
    results.latency.append(latency_row("`Captioner.caption` of the 10 s 854x480 clip (in process, warm)", totals,
                                       "<= 0.3 s"))


def latency_row(what: str, seconds: list[float], goal: str) -> dict[str, Any]:
    return {"what": what, "min_s": min(seconds), "median_s": statistics.median(seconds), "max_s": max(seconds),
            "repeats": len(seconds), "goal": goal}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(url: str, process: subprocess.Popen, timeout_s: float) -> float:
    """Seconds until `url` answers HTTP 200 (the demo warms up before it serves, so serving = ready)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if process.poll() is not None:
            raise RuntimeError(f"vidcap-demo exited with status {process.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return time.perf_counter() - started
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"vidcap-demo did not serve {url} within {timeout_s:.0f} s")


def measure_first_request(results_dir: Path, examples: Path, clip: Path, repeats: int, results: PerfResults,
                          own: OwnWork | None = None, page_clips: dict[str, Path] | None = None) -> None:
    """Start the real demo (`vidcap-demo` in a subprocess on 127.0.0.1), wait until it serves, then
    time its first `/caption` request through gradio_client, and `repeats` more after it; then
    `repeats` requests (after one untimed) at the page's beam size for each of `page_clips` (label ->
    file). `own` counts the demo's decoder children, which its stop orphans, as this run's work."""
    from gradio_client import Client, handle_file

    port = free_port()
    demo = Path(sys.executable).with_name("vidcap-demo")
    command = [str(demo)] if demo.is_file() else [sys.executable, "-c", "from demo.cli import main; main()"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--results", str(results_dir), "--examples", str(examples)]
    url = f"http://127.0.0.1:{port}/"
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as process:
        try:
            start_s = wait_until_serving(url, process, DEMO_START_TIMEOUT_S)
            client = Client(url, verbose=False)

            def caption(path: Path, beam: int = 1) -> None:
                answer = client.predict(handle_file(str(path)), "best", beam, 0, api_name="/caption")
                if "error" in answer:
                    raise RuntimeError(f"the demo answered an error on {path.name}: {answer['error']}")

            first = time_it(lambda: caption(clip), 1, warmup=0)
            later = time_it(lambda: caption(clip), repeats, warmup=0)
            # the page's beam size (its first call untimed: a new file's first upload, the model's beam-3 path)
            per_clip = {label: time_it(lambda: caption(path, READABLE.beam), repeats)
                        for label, path in (page_clips or {}).items()}
        except Exception as exc:
            process.terminate()
            _, stderr = process.communicate(timeout=30)
            raise RuntimeError(f"{exc}; vidcap-demo stderr tail: {(stderr or '')[-2000:]}") from exc
        if own is not None:
            own.before_stopping(process.pid)
        process.kill()  # not terminate: a demo that reaped its children on the way out would count them twice
        process.communicate(timeout=30)
    results.latency.append(latency_row("first `/caption` request after the demo started (gradio_client, "
                                       "the 10 s clip, upload included)", first, "<= 1 s"))
    results.latency.append(latency_row("later `/caption` requests (same)", later, "as fast as the first"))
    for label, seconds in per_clip.items():
        results.latency.append(latency_row(f"`/caption` at the page's beam {READABLE.beam}, {label} (gradio_client, "
                                           "upload included)", seconds, "<= 1 s"))
    results.notes.append(f"The demo took {start_s:.1f} s from start to serving (models loaded, decoder children "
                         "started and one example captioned before it serves).")


def serving_folder(model: Path, folder: Path) -> Path:
    """A results folder the demo serves `model` from, as its best model."""
    (folder / "best").mkdir(parents=True, exist_ok=True)
    (folder / "best" / "model.pt").write_bytes(model.read_bytes())
    return folder


def read_browser_measurement(out: Path, results: PerfResults) -> None:
    """Click to caption in Chromium, per clip, as tests/test_demo_browser.py measured it (not asserted
    there). A file from before the per-clip times ({"clip", "click_to_caption_s"}) is one clip."""
    path = out / BROWSER_RESULT
    if not path.is_file():
        results.notes.append(f"Click to caption in a real browser: not measured; run `VIDCAP_PERF_BROWSER={path} "
                             "pytest tests/test_demo_browser.py` (needs `make browser`), then this command again.")
        return
    measured = json.loads(path.read_text())
    for clip in measured.get("clips") or [measured]:
        results.latency.append(latency_row(f"click to caption in Chromium ({clip['clip']}; measured by "
                                           f"tests/test_demo_browser.py at {measured['measured_at']})",
                                           clip["click_to_caption_s"], "<= 1 s"))


def _proc_stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (field 3, the state, first); None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def child_processes() -> dict[int, list[int]]:
    """Every live process's children, by parent id, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        fields = _proc_stat_fields(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`: its children, their children, ..."""
    children = child_processes()
    found, stack = [], list(children.get(pid, []))
    while stack:
        child = stack.pop()
        found.append(child)
        stack += children.get(child, [])
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used by `pid`, its live descendants and every child any of them has reaped (the
    kernel's utime + stime + cutime + cstime, so each process of the tree is counted once)."""
    ticks = 0
    for member in [pid, *descendants(pid)]:
        fields = _proc_stat_fields(member)
        if fields is not None:
            ticks += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds(cpus: set[int]) -> float:
    """CPU seconds the machine has spent working (user, nice, system, irq, softirq; not idle or
    waiting) on `cpus` since boot, from /proc/stat."""
    ticks = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            ticks += sum(int(v) for v in values[:3] + values[4:7])  # user nice system [idle] [iowait] irq softirq
    return ticks / os.sysconf("SC_CLK_TCK")


class OwnWork:
    """How much CPU the rest of the machine used while this run ran: the machine's CPU time on the
    cores this process may use, minus this run's own process tree (this process, the demo it starts,
    the demo's decoder children). Linux only (/proc); elsewhere `other_cores()` is None."""

    def __init__(self) -> None:
        self.cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        self.available = Path("/proc/stat").is_file() and bool(self.cpus)
        self.started = time.perf_counter()
        self.machine_start = machine_cpu_seconds(self.cpus) if self.available else 0.0
        self.own_start = tree_cpu_seconds(os.getpid()) if self.available else 0.0
        self.orphaned = 0.0  # CPU of children of a stopped child, which leave the tree unreaped

    def before_stopping(self, pid: int) -> None:
        """Call just before killing child `pid`: its own children are then orphaned, not reaped into
        this tree's count, so their CPU so far is added here (pid's own is reaped with it)."""
        if self.available:
            self.orphaned += sum(tree_cpu_seconds(child) for child in child_processes().get(pid, []))

    def other_cores(self) -> float | None:
        """Cores other processes kept busy on average since this object was made."""
        if not self.available:
            return None
        elapsed = time.perf_counter() - self.started
        machine = machine_cpu_seconds(self.cpus) - self.machine_start
        own = tree_cpu_seconds(os.getpid()) - self.own_start + self.orphaned
        return max(0.0, machine - own) / elapsed if elapsed > 0 else 0.0


def load_summary(before: tuple[float, float, float], after: tuple[float, float, float], cores: int,
                 other_cores: float | None) -> dict[str, Any]:
    """The load around a run and, when other work shared the machine, the warning the report prints.

    Busy means `other_cores` (OwnWork: processes outside this run's own tree, on average during the
    run) above cores x BUSY_LOAD_PER_CORE. The load averages also count this run's own work (its
    torch threads, the demo it starts), so they are shown but judge nothing; without /proc
    (other_cores None) the 1-minute load average before the run started, which has none of it, judges.
    """
    limit = cores * BUSY_LOAD_PER_CORE
    if other_cores is not None:
        busy = other_cores > limit
        what = f"other processes kept {other_cores:.2f} of {cores} core(s) busy on average during the run"
    else:
        busy = before[0] > limit
        what = f"the 1-minute load average was {before[0]:.2f} on {cores} core(s) before the run"
    warning = None
    if busy:
        warning = (f"**Busy machine: {what} (above {limit:g} = cores x {BUSY_LOAD_PER_CORE}; this run's own "
                   "processes not counted); other work shared the CPUs, so these times are slower and noisier "
                   "than on a quiet machine. Compare runs only when neither warns.**")
    return {"before": list(before), "after": list(after), "other_cores": other_cores, "cores": cores,
            "busy_limit": limit, "warning": warning}


def timings_table(timings: list[Timing]) -> pd.DataFrame:
    return pd.DataFrame({
        "what": [t.name for t in timings],
        "median": [f"{t.median * 1000:.1f} ms" for t in timings],
        "min..max": [f"{min(t.seconds) * 1000:.1f}..{max(t.seconds) * 1000:.1f} ms" for t in timings],
        "throughput": [f"{t.per_second:,.1f} {t.unit}/s" for t in timings],
        "per unit": [f"{t.ms_per_unit:.2f} ms/{t.unit[:-1]}" for t in timings],
    })


def latency_table(rows: list[dict[str, Any]], floor: Timing | None) -> pd.DataFrame:
    """The latencies a user sees, each with its ratio to the decode floor (median over median)."""
    frame = pd.DataFrame(rows, columns=["what", "min_s", "median_s", "max_s", "repeats", "goal"])
    floor_s = floor.median if floor is not None else float("nan")
    return pd.DataFrame({
        "what": frame["what"],
        "median": [f"{v:.3f} s" for v in frame["median_s"]],
        "min..max": [f"{lo:.3f}..{hi:.3f} s" for lo, hi in zip(frame["min_s"], frame["max_s"])],
        "repeats": frame["repeats"].astype(str),
        "x decode floor": [f"{v / floor_s:.1f}x" if floor_s > 0 else fmt(None) for v in frame["median_s"]],
        "goal": frame["goal"],
    })


def ratios_table(ratios: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"ratio": list(ratios), "measured": [f"{fmt(v, 2)}x" for v in ratios.values()]})


# ----------------------------------------------------------------------------- report


def markdown(results: PerfResults, seconds: float) -> str:
    load = results.load
    lines = ["# vidcap performance", "", "Generated by `vidcap-bench perf --out results`; medians over repeats, min..max "
             "beside them; ratios measured side by side in the same run.", ""]
    if load.get("warning"):
        lines += [load["warning"], ""]
    lines += ["## Machine", "", describe_machine().markdown(), f"- torch threads: {torch.get_num_threads()}"]
    if load:
        lines.append(f"- load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in load['before'])}; after: "
                     f"{', '.join(f'{v:.2f}' for v in load['after'])} (this run's own work included)")
        others = load.get("other_cores")
        lines.append(f"- other processes during the run: {fmt(others, 2)} of {load['cores']} core(s) busy on average "
                     f"(busy above {load['busy_limit']:g})" if others is not None else
                     f"- other processes during the run: not measured (no /proc); busy above {load['busy_limit']:g}")
    lines.append("")
    floor = next(iter(results.sections.get("Decode floor (every frame decoded, no conversion)", [])), None)
    if results.latency:
        lines += ["## Latency a user sees", "", markdown_table(latency_table(results.latency, floor)), ""]
        if floor is not None:
            lines += [f"Decode floor: {floor.name}, {floor.median * 1000:.1f} ms median.", ""]
    for title, timings in results.sections.items():
        lines += [f"## {title}", "", markdown_table(timings_table(timings)), ""]
    if results.ratios:
        lines += ["## Ratios", "", markdown_table(ratios_table(results.ratios)), ""]
    if results.notes:
        lines += ["## Notes", "", *(f"- {n}" for n in results.notes), ""]
    lines.append(f"This measurement took {seconds:.0f} s. Regenerate: `vidcap-bench perf --out results`.")
    return "\n".join(lines) + "\n"


def run_perf(options: PerfOptions) -> Path:
    started = time.perf_counter()
    load_before = os.getloadavg()
    own = OwnWork()
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
        page_clips = {f"SynthClips clip ({synth_clip.name}, 64x64)": synth_clip}
        if SHARED_CAMERA_CLIP.is_file():
            page_clips[f"real camera clip ({SHARED_CAMERA_CLIP.name}, 426x240)"] = SHARED_CAMERA_CLIP
        page_clips["10 s 1280x720 H.264"] = write_test_clip(scratch_dir / "clip_720p_10s.mp4", CLIP_720P)
        model_path, model_note = load_model_for_latency(checkpoint, scratch_dir)
        results.notes.append(f"Latency model: {model_note}; inputs for decoding benchmarks are random features of its size.")
        kinds = {"10 s 854x480 H.264": clip, f"SynthClips clip ({synth_clip.name}, 64x64)": synth_clip}
        if SHARED_CAMERA_CLIP.is_file():
            kinds["real camera clip (flipping_a_pancake.mkv, 426x240)"] = SHARED_CAMERA_CLIP
        measure_video_decoding(kinds, options.repeats, results)
        floor = measure_decode_floor(clip, options.repeats, results)
        measure_backbones(options.repeats, results)
        measure_training(options.repeats, results)
        measure_decoding(model_path, options.repeats, results)
        measure_end_to_end(model_path, clip, options.repeats, results)
        served = out if model_path == checkpoint else serving_folder(model_path, scratch_dir / "served")
        measure_first_request(served, tiny.root, clip, options.repeats, results, own, page_clips)
        results.ratios["`Captioner.caption` / decode floor (medians)"] = results.e2e["total_ms"] / 1000 / floor.median
    read_browser_measurement(out, results)
    results.load = load_summary(load_before, os.getloadavg(), available_cores(), own.other_cores())
    seconds = time.perf_counter() - started
    write_json(out / "perf.json", {
        "sections": {k: [t.to_dict() for t in v] for k, v in results.sections.items()},
        "ratios": {k: v for k, v in results.ratios.items() if math.isfinite(v)}, "end_to_end": results.e2e,
        "notes": results.notes, "seconds": round(seconds, 1), "machine": describe_machine().to_dict(),
        "latency": results.latency, "load": results.load,
    })
    path = out / "perf.md"
    write_text(path, markdown(results, seconds))
    return path
